// Builds and publishes the unwind rows the signal handler walks with
// (capture/unwind.h), from the .eh_frame of every loaded object.
//
// refresh() asks the loader whether anything was loaded or unloaded since
// the last call (dl_iterate_phdr's counters: one short pass under the
// loader's lock, from our own thread), decodes the call-frame information
// of objects it has not seen, reusing the rows of those it has, and swaps
// in a new index. Decoding happens inside dl_iterate_phdr's callback, so no
// dlclose() can unmap an object while its .eh_frame is being read; every
// read is checked against the object's loaded segments.
//
// Not thread-safe: one caller at a time (the CPU profiler holds its lock).
// Never for signal handlers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "capture/unwind.h"

namespace cpprof::sources {

// The decoded rows of one object.
struct ObjectRows {
  std::string name;  // as the loader names it ("" for the main program)
  uintptr_t base = 0;
  uintptr_t start = 0;
  uintptr_t limit = 0;
  std::vector<capture::UnwindRow> rows;  // sorted, merged, gaps marked kNone
  std::vector<uint32_t> page_first;
  size_t fdes = 0;  // frame descriptions decoded
};

// What the tables hold, for the index page and tests.
struct UnwindStats {
  size_t objects = 0;
  size_t rows = 0;
  size_t bytes = 0;
  size_t refreshes = 0;  // times a new index was built
  size_t leaked = 0;     // old indexes kept because a handler stayed inside a walk too long
};

class UnwindTables {
 public:
  UnwindTables();
  ~UnwindTables();
  UnwindTables(const UnwindTables&) = delete;
  UnwindTables& operator=(const UnwindTables&) = delete;

  // Brings the published index up to date with the loaded objects. Cheap
  // when nothing changed. `force` rebuilds even then (tests).
  void refresh(bool force = false);

  // Withdraws the published index (walks fall back to frame pointers).
  void unpublish();

  // The index most recently built (tests and benchmarks walk with it).
  const capture::UnwindIndex* index() const;

  // The rows for the object containing `pc`, if any (tests).
  const ObjectRows* object_for(uintptr_t pc) const;

  UnwindStats stats() const;

 private:
  struct Published;

  void retire(std::unique_ptr<Published> old);

  std::unique_ptr<Published> current_;
  std::vector<std::unique_ptr<Published>> leaked_;
  unsigned long long adds_ = ~0ull;
  unsigned long long subs_ = ~0ull;
  size_t refreshes_ = 0;
};

// Decodes the rows of one object from its PT_GNU_EH_FRAME segment.
// `segments` are the object's readable loaded ranges [first, second), used
// to bound every read. Returns false if the object has no usable table.
bool decode_eh_frame(uintptr_t base, uintptr_t eh_frame_hdr,
                     const std::vector<std::pair<uintptr_t, uintptr_t>>& segments, ObjectRows* out);

}  // namespace cpprof::sources

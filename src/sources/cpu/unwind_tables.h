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
#include <mutex>
#include <string>
#include <vector>

#include "capture/unwind.h"
#include "sources/cpu/eh_frame.h"

namespace cpprof::sources {

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

// The process's tables, the ones published for every walk (signal handlers
// and allocation traps): brought up to date under a lock of their own.
// Thread-safe; never for signal handlers. The instance lives as long as
// the process.
void refresh_process_unwind_tables();

// The lock refresh_process_unwind_tables takes; held across fork()
// (api/fork_safety.cc).
std::mutex& process_unwind_tables_mutex();

}  // namespace cpprof::sources

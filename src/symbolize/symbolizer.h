// Addresses of this process -> mappings, functions, files and lines.
//
// Not for signal handlers or malloc hooks: it allocates, reads files and
// takes a lock. Thread-safe: every public member may be called from any
// thread. Results are cached per object; objects that were unmapped since
// (dlclose) keep resolving from the cache.
//
// Cost: construction reads nothing. A refresh reads /proc/self/maps and maps
// each newly seen object's file (headers and build-id only; holding the
// mapping also keeps a deleted or replaced file's old contents readable).
// Symbol tables are read and sorted at the first address inside an object.
// Version 1 knows ELF symbol tables only: file and line stay empty and every
// address yields at most one frame; libdw adds those later.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace cpprof::symbolize {

// One executable mapping of a loaded object (a line of /proc/self/maps with x).
struct Mapping {
  uint64_t start = 0;        // first address
  uint64_t limit = 0;        // one past the last address
  uint64_t file_offset = 0;  // offset in the file of `start`
  std::string path;          // file name, or a pseudo name like "[vdso]"
  std::string build_id;      // GNU build-id as lowercase hex; empty if none
};

// One frame of the source-level stack at an address. An address inside
// inlined code yields several frames, innermost first.
struct Frame {
  std::string function;  // demangled, shortened as pprof shows it ("ns::f"); empty if unknown
  std::string raw_name;  // mangled (linkage) name; same as function if not mangled
  std::string file;      // source file; empty if unknown
  int64_t line = 0;      // source line; 0 if unknown
  uint64_t function_start = 0;  // runtime address where the function begins; 0 if unknown
};

class Symbolizer {
 public:
  Symbolizer();
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // Re-reads /proc/self/maps so that objects loaded since are known. Mappings
  // that disappeared stay known (a sample may predate a dlclose).
  void refresh();

  // Like refresh(), from `maps_text` in /proc/self/maps format: for tests,
  // and for callers that have read the maps themselves.
  void refresh_from(std::string_view maps_text);

  // The executable mapping that holds `address`, if any. A miss re-reads
  // /proc/self/maps, at most every 50 ms (call refresh() to force one).
  bool find_mapping(uint64_t address, Mapping* out);

  // Every executable mapping known (current and past), ordered by start.
  std::vector<Mapping> mappings();

  // The frames at `address` (innermost first). Empty if nothing is known.
  std::vector<Frame> symbolize(uint64_t address);

 private:
  struct Impl;
  std::mutex mu_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cpprof::symbolize

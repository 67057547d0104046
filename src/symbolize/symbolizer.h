// Addresses of this process -> mappings, functions, files and lines.
//
// Not for signal handlers or malloc hooks: it allocates, reads files and
// takes a lock. Thread-safe: every public member may be called from any
// thread. Results are cached per object; objects that were unmapped since
// (dlclose) keep resolving from the cache.
//
// Where the answers come from: the ELF symbol table (.symtab, else that of
// the separate debug file found by build-id or .gnu_debuglink, else
// .dynsym) names the function and gives its start. Where DWARF describes
// the address (in the object or its debug file), elfutils' libdw adds the
// file and line, and expands inlined code: an address inside a function
// that was inlined into another yields the inlined function at the
// address's line, then each function it was inlined into at the line of
// that call, ending with the real (out-of-line) function. Where DWARF knows
// nothing, the answer is the ELF symbol alone, without file or line. Names
// are C++ linkage names, demangled and shortened; without one (C code), the
// out-of-line function keeps its ELF symbol's name, so that answers with
// and without DWARF agree, and inlined functions their qualified source name.
//
// libdw is dlopen()ed at the first address in an object that has DWARF
// (dwarf_available() says whether it could be); without it, answers are
// the ELF ones. Debuginfod is never asked: only local files are read.
//
// Cost: construction reads nothing. A refresh reads /proc/self/maps and maps
// each newly seen object's file (headers and build-id only; holding the
// mapping also keeps a deleted or replaced file's old contents readable, and
// lets DWARF be read after a dlclose). Symbol tables are read and sorted at
// the first address inside an object; DWARF is opened then too (libdw
// decompresses the debug sections), and each compilation unit is indexed at
// its first address. Answers from DWARF are cached per object, up to a
// bound.
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
  std::string function;    // demangled, shortened as pprof shows it ("ns::f"); empty if unknown
  std::string raw_name;    // mangled (linkage) name; same as function if not mangled
  std::string file;        // source file, full path as DWARF gives it; empty if unknown
  int64_t line = 0;        // source line; 0 if unknown
  int64_t start_line = 0;  // line where the function is declared; 0 if unknown
  // Runtime address where the (out-of-line) function holding the address
  // begins, from the ELF symbol; 0 if unknown, and in inlined frames.
  uint64_t function_start = 0;
};

struct SymbolizerOptions {
  bool read_dwarf = true;  // false: ELF symbols only, as when libdw is missing
};

class Symbolizer {
 public:
  Symbolizer();
  explicit Symbolizer(SymbolizerOptions options);
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

  // Where the out-of-line function holding `address` starts (runtime
  // address), from ELF symbols only: no DWARF is read. 0 if unknown.
  uint64_t function_start(uint64_t address);

  // The frames at `address` (innermost first; the last is the out-of-line
  // function). Empty if nothing is known.
  std::vector<Frame> symbolize(uint64_t address);

  // Whether libdw could be loaded, so that objects with DWARF give files,
  // lines and inlined frames. Loads it on the first call.
  static bool dwarf_available();

  // The lock every call takes; held across fork() (api/fork_safety.cc).
  std::mutex& fork_mutex() { return mu_; }

 private:
  struct Impl;
  std::mutex mu_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cpprof::symbolize

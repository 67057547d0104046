// Parsing of /proc/<pid>/maps: which file is mapped where, with what rights.
//
// parse_proc_maps() is a pure function over text so that it can be unit-tested
// and fuzzed without a live process. Not for signal handlers: it allocates.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cpprof::symbolize {

// One line of /proc/self/maps.
struct MapsEntry {
  uint64_t start = 0;      // first address
  uint64_t limit = 0;      // one past the last address
  std::string perms;       // four letters as the kernel prints them, e.g. "r-xp"
  uint64_t offset = 0;     // file offset of `start`
  uint32_t dev_major = 0;  // device of the file; inode numbers are unique per device
  uint32_t dev_minor = 0;
  uint64_t inode = 0;    // 0 for anonymous and pseudo mappings
  std::string path;      // file name without " (deleted)"; "[vdso]" etc.; empty if anonymous
  bool deleted = false;  // the file was unlinked after it was mapped

  // True for code: the kernel's 'x' permission bit.
  bool executable() const { return perms.size() >= 3 && perms[2] == 'x'; }
};

// Every well-formed line of `text`, in order. Malformed lines are skipped
// rather than failing the whole parse: a profile with one mapping missing is
// better than no profile.
std::vector<MapsEntry> parse_proc_maps(std::string_view text);

// Reads the whole of /proc/self/maps into `out`. False if it cannot be read.
bool read_proc_maps(std::string* out);

}  // namespace cpprof::symbolize

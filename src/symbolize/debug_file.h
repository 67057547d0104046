// Where a stripped object's separate debug file may be, and how to tell it
// is the right one. Follows the conventions of GDB and Debian's *-dbg
// packages: /usr/lib/debug/.build-id/ab/cdef....debug by build-id, or the
// name in .gnu_debuglink next to the object, in its .debug/ directory, or
// under /usr/lib/debug mirroring the object's directory.
// Never reaches the network (no debuginfod).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cpprof::symbolize {

// A place to look, and what identifies the file found there.
struct DebugFileCandidate {
  std::string path;
  bool by_build_id = false;  // found through the build-id: compare build-ids,
                             // otherwise compare the .gnu_debuglink CRC
};

// Candidate paths in the order to try them. `build_id` is lowercase hex
// (may be empty), `debuglink` the name from .gnu_debuglink (may be empty),
// `debug_root` normally "/usr/lib/debug".
std::vector<DebugFileCandidate> debug_file_candidates(std::string_view object_path,
                                                      std::string_view build_id,
                                                      std::string_view debuglink,
                                                      std::string_view debug_root);

// The CRC-32 that .gnu_debuglink records for its file (the zlib/IEEE one).
uint32_t debuglink_crc32(std::span<const uint8_t> bytes);

}  // namespace cpprof::symbolize

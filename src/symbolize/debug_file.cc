#include "symbolize/debug_file.h"

#include <array>

namespace cpprof::symbolize {
namespace {

// Reflected CRC-32 with polynomial 0xedb88320, the table built once.
constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

}  // namespace

std::vector<DebugFileCandidate> debug_file_candidates(std::string_view object_path,
                                                      std::string_view build_id,
                                                      std::string_view debuglink,
                                                      std::string_view debug_root) {
  std::vector<DebugFileCandidate> out;
  std::string root(debug_root);
  // A build-id shorter than two bytes cannot be split into directory/file.
  if (build_id.size() > 2) {
    out.push_back({root + "/.build-id/" + std::string(build_id.substr(0, 2)) + "/" +
                       std::string(build_id.substr(2)) + ".debug",
                   true});
  }
  // A debuglink is a bare file name; one with a slash would escape the
  // directories we mean to search.
  if (!debuglink.empty() && debuglink.find('/') == std::string_view::npos && debuglink != "." &&
      debuglink != "..") {
    size_t slash = object_path.rfind('/');
    std::string dir(slash == std::string_view::npos ? "." : object_path.substr(0, slash));
    std::string name(debuglink);
    // The object's own path is not a candidate: it has no symbols, that is
    // why we are looking.
    if (dir + "/" + name != object_path) out.push_back({dir + "/" + name, false});
    out.push_back({dir + "/.debug/" + name, false});
    if (!dir.empty() && dir.front() == '/') out.push_back({root + dir + "/" + name, false});
  }
  return out;
}

uint32_t debuglink_crc32(std::span<const uint8_t> bytes) {
  uint32_t crc = 0xffffffffu;
  for (uint8_t b : bytes) crc = kCrcTable[(crc ^ b) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

}  // namespace cpprof::symbolize

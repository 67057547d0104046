#include "symbolize/proc_maps.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace cpprof::symbolize {
namespace {

// A cursor over one line; each parse_* consumes what it accepts and fails
// without consuming on anything unexpected.
class LineReader {
 public:
  explicit LineReader(std::string_view line) : rest_(line) {}

  bool parse_hex(uint64_t* out) {
    uint64_t value = 0;
    size_t n = 0;
    for (; n < rest_.size(); ++n) {
      int digit = hex_digit(rest_[n]);
      if (digit < 0) break;
      if (value > (UINT64_MAX >> 4)) return false;  // more than 64 bits
      value = (value << 4) | static_cast<uint64_t>(digit);
    }
    if (n == 0) return false;
    rest_.remove_prefix(n);
    *out = value;
    return true;
  }

  bool parse_dec(uint64_t* out) {
    uint64_t value = 0;
    size_t n = 0;
    for (; n < rest_.size() && rest_[n] >= '0' && rest_[n] <= '9'; ++n) {
      uint64_t digit = static_cast<uint64_t>(rest_[n] - '0');
      if (value > (UINT64_MAX - digit) / 10) return false;
      value = value * 10 + digit;
    }
    if (n == 0) return false;
    rest_.remove_prefix(n);
    *out = value;
    return true;
  }

  bool expect(char c) {
    if (rest_.empty() || rest_.front() != c) return false;
    rest_.remove_prefix(1);
    return true;
  }

  // A run of non-space characters.
  bool parse_word(std::string_view* out) {
    size_t n = rest_.find(' ');
    if (n == std::string_view::npos) n = rest_.size();
    if (n == 0) return false;
    *out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }

  void skip_spaces() {
    while (!rest_.empty() && rest_.front() == ' ') rest_.remove_prefix(1);
  }

  std::string_view rest() const { return rest_; }

 private:
  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  std::string_view rest_;
};

// "start-limit perms offset major:minor inode   path"; the path is the rest
// of the line and may itself contain spaces.
bool parse_line(std::string_view line, MapsEntry* out) {
  LineReader r(line);
  uint64_t major = 0, minor = 0;
  std::string_view perms;
  if (!r.parse_hex(&out->start) || !r.expect('-') || !r.parse_hex(&out->limit) || !r.expect(' ') ||
      !r.parse_word(&perms) || !r.expect(' ') || !r.parse_hex(&out->offset) || !r.expect(' ') ||
      !r.parse_hex(&major) || !r.expect(':') || !r.parse_hex(&minor) || !r.expect(' ') ||
      !r.parse_dec(&out->inode)) {
    return false;
  }
  if (out->start >= out->limit || perms.size() != 4 || major > UINT32_MAX || minor > UINT32_MAX) {
    return false;
  }
  std::string_view path = r.rest();
  if (!path.empty() && path.front() != ' ') return false;  // junk glued to the inode
  r.skip_spaces();
  path = r.rest();
  constexpr std::string_view kDeleted = " (deleted)";
  out->deleted = path.size() > kDeleted.size() && path.ends_with(kDeleted);
  if (out->deleted) path.remove_suffix(kDeleted.size());
  out->perms.assign(perms);
  out->dev_major = static_cast<uint32_t>(major);
  out->dev_minor = static_cast<uint32_t>(minor);
  out->path.assign(path);
  return true;
}

}  // namespace

std::vector<MapsEntry> parse_proc_maps(std::string_view text) {
  std::vector<MapsEntry> entries;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    MapsEntry entry;
    if (parse_line(line, &entry)) entries.push_back(std::move(entry));
  }
  return entries;
}

bool read_proc_maps(std::string* out) {
  int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buffer[16384];
  bool ok = true;
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      out->append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      ok = false;
      break;
    }
  }
  ::close(fd);
  return ok;
}

}  // namespace cpprof::symbolize

#include "http/plain_endpoints.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace cpprof::http {
namespace {

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

std::string to_hex(uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string reversed;
  do {
    reversed.push_back(kDigits[value & 0xf]);
    value >>= 4;
  } while (value != 0);
  return "0x" + std::string(reversed.rbegin(), reversed.rend());
}

}  // namespace

std::string cmdline_from_proc(std::string_view proc_cmdline) {
  std::string out(proc_cmdline);
  if (!out.empty() && out.back() == '\0') out.pop_back();
  return out;
}

std::string read_cmdline() {
  int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string data;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return cmdline_from_proc(data);
}

bool parse_go_uint(std::string_view text, uint64_t* out) {
  unsigned base = 10;
  if (text.size() >= 2 && text[0] == '0') {
    char prefix = static_cast<char>(text[1] | 0x20);
    if (prefix == 'x') base = 16;
    if (prefix == 'b') base = 2;
    if (prefix == 'o') base = 8;
    if (base != 10) {
      text.remove_prefix(2);
    } else {
      base = 8;
      text.remove_prefix(1);
    }
  }
  if (text.empty()) return false;
  uint64_t value = 0;
  for (char c : text) {
    int digit = digit_value(c);
    if (digit >= static_cast<int>(base)) return false;
    if (value > (UINT64_MAX - static_cast<uint64_t>(digit)) / base) return false;
    value = value * base + static_cast<uint64_t>(digit);
  }
  *out = value;
  return true;
}

std::string symbol_body(std::string_view input,
                        const std::function<std::string(uint64_t)>& symbol_name) {
  // pprof only asks whether this is 0 (no symbols) or not; Go always says 1.
  std::string out = symbol_name ? "num_symbols: 1\n" : "num_symbols: 0\n";
  if (!symbol_name) return out;
  while (true) {
    size_t plus = input.find('+');
    std::string_view word = input.substr(0, plus);
    uint64_t pc = 0;
    if (parse_go_uint(word, &pc) && pc != 0) {
      std::string name = symbol_name(pc);
      if (!name.empty()) out += to_hex(pc) + " " + name + "\n";
    }
    if (plus == std::string_view::npos) break;
    input.remove_prefix(plus + 1);
  }
  return out;
}

}  // namespace cpprof::http

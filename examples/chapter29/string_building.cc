// Lesson: building a string (lessons.h).
#include <charconv>
#include <sstream>
#include <string>

#include "lessons.h"

namespace chapter29 {
namespace {

// Writes `value` in decimal into `buf` and returns the end.
char* format_int(int value, char (&buf)[16]) {
  return std::to_chars(buf, buf + sizeof buf, value).ptr;
}

size_t decimal_digits(int value) {
  size_t digits = 1;
  for (; value >= 10; value /= 10) ++digits;
  return digits;
}

}  // namespace

std::string join_plus_equals(int n) {
  std::string out;
  char buf[16];
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    out.append(buf, format_int(i, buf));
  }
  return out;
}

std::string join_reserved(int n) {
  size_t length = n > 0 ? static_cast<size_t>(n - 1) : 0;  // the separators
  for (int i = 0; i < n; ++i) length += decimal_digits(i);
  std::string out;
  out.reserve(length);
  char buf[16];
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    out.append(buf, format_int(i, buf));
  }
  return out;
}

std::string join_ostringstream(int n) {
  std::ostringstream out;
  for (int i = 0; i < n; ++i) {
    if (i > 0) out << ',';
    out << i;
  }
  return out.str();
}

}  // namespace chapter29

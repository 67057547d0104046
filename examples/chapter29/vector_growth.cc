// Lesson: growing a vector (lessons.h).
#include <cstdint>
#include <vector>

#include "escape.h"
#include "lessons.h"

namespace chapter29 {
namespace {

uint64_t sum(const std::vector<int>& values) {
  uint64_t total = 0;
  for (int v : values) total += static_cast<uint64_t>(v);
  return total;
}

}  // namespace

uint64_t fill_by_push_back(int n) {
  std::vector<int> values;
  for (int i = 0; i < n; ++i) values.push_back(i);
  escape(values.data());
  return sum(values);
}

uint64_t fill_reserved(int n) {
  std::vector<int> values;
  values.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) values.push_back(i);
  escape(values.data());
  return sum(values);
}

}  // namespace chapter29

// Lesson: passing a large struct (lessons.h).
#include <bit>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lessons.h"

namespace chapter29 {
namespace {

// Longer than std::string's 15 characters in place: a copy allocates.
constexpr std::string_view kTitle = "weekly latency report, eu-west1";
static_assert(kTitle.size() == 31);
// Each tag is this with its last digits replaced by the tag's number.
constexpr std::string_view kTagPattern = "label-of-report-00000";
static_assert(kTagPattern.size() == 21);
constexpr size_t kInPlaceChars = 15;  // libstdc++'s small-string capacity

uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001b3ULL; }

uint64_t mix_text(uint64_t h, const std::string& text) {
  for (char c : text) h = mix(h, static_cast<unsigned char>(c));
  return h;
}

}  // namespace

Report make_report(int samples, int tags) {
  Report report;
  report.title = kTitle;
  for (int i = 0; i < samples; ++i) report.samples.push_back(0.25 * i);
  for (int i = 0; i < tags; ++i) {
    std::string tag(kTagPattern);
    for (size_t pos = tag.size(), rest = static_cast<size_t>(i); rest > 0; rest /= 10) {
      tag[--pos] = static_cast<char>('0' + rest % 10);
    }
    report.tags.push_back(std::move(tag));
  }
  for (size_t i = 0; i < report.counters.size(); ++i) report.counters[i] = i * i;
  return report;
}

int heap_parts(const Report& report) {
  int parts = report.title.size() > kInPlaceChars ? 1 : 0;
  if (!report.samples.empty()) ++parts;
  if (!report.tags.empty()) ++parts;
  for (const std::string& tag : report.tags) {
    if (tag.size() > kInPlaceChars) ++parts;
  }
  return parts;
}

uint64_t summarize_by_value(Report report) { return summarize_by_ref(report); }

uint64_t summarize_by_ref(const Report& report) {
  uint64_t h = mix_text(0xcbf29ce484222325ULL, report.title);
  for (double sample : report.samples) h = mix(h, std::bit_cast<uint64_t>(sample));
  for (const std::string& tag : report.tags) h = mix_text(h, tag);
  for (uint64_t counter : report.counters) h = mix(h, counter);
  return h;
}

}  // namespace chapter29

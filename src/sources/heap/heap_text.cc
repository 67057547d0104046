#include "sources/heap/heap_text.h"

#include <algorithm>

#include "profile/stack_text.h"
#include "profile/text_columns.h"
#include "sources/heap/heap_profile.h"

namespace cpprof::sources {
namespace {

// "<inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>]", as Go's "%d: %d [%d: %d]".
void append_counts(std::string* out, const RawHeapSample& raw) {
  *out += std::to_string(raw.inuse_objects) + ": " + std::to_string(raw.inuse_bytes) + " [" +
          std::to_string(raw.alloc_objects) + ": " + std::to_string(raw.alloc_bytes) + "]";
}

}  // namespace

std::string heap_text(const HeapSnapshot& snapshot, symbolize::Symbolizer& symbolizer,
                      const std::vector<HeapTextStat>& stats) {
  std::vector<RawHeapSample> records;
  records.reserve(snapshot.buckets.size());
  RawHeapSample total;
  for (const HeapBucket& bucket : snapshot.buckets) {
    records.push_back(raw_heap_sample(bucket));
    const RawHeapSample& r = records.back();
    total.alloc_objects += r.alloc_objects;
    total.alloc_bytes += r.alloc_bytes;
    total.inuse_objects += r.inuse_objects;
    total.inuse_bytes += r.inuse_bytes;
  }
  std::stable_sort(
      records.begin(), records.end(),
      [](const RawHeapSample& a, const RawHeapSample& b) { return a.inuse_bytes > b.inuse_bytes; });

  std::string out = "heap profile: ";
  append_counts(&out, total);
  // Twice the rate: what pprof has come to expect from the first C++ heap profiler.
  out += " @ heap/" + std::to_string(2 * snapshot.rate) + '\n';
  for (const RawHeapSample& r : records) {
    append_counts(&out, r);
    out += " @";
    profile::append_address_list(&out, r.frames);
    out += '\n';
    profile::append_stack_record(&out, r.frames, symbolizer);
  }
  if (!stats.empty()) {
    out += "\n# cpprof.AllocStats\n";
    for (const auto& [name, value] : stats) {
      out += "# " + name + " = " + std::to_string(value) + '\n';
    }
  }
  return profile::align_tab_columns(out);
}

}  // namespace cpprof::sources

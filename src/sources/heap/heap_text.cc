#include "sources/heap/heap_text.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "profile/text_columns.h"
#include "sources/heap/heap_profile.h"

namespace cpprof::sources {
namespace {

void append_hex(std::string* out, uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, value);
  *out += buf;
}

// "<inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>]", as Go's "%d: %d [%d: %d]".
void append_counts(std::string* out, const RawHeapSample& raw) {
  *out += std::to_string(raw.inuse_objects) + ": " + std::to_string(raw.inuse_bytes) + " [" +
          std::to_string(raw.alloc_objects) + ": " + std::to_string(raw.alloc_bytes) + "]";
}

// Go's printStackRecord: a line per frame (an unknown one shows only its
// address), then an empty line.
void append_stack(std::string* out, std::span<const uint64_t> frames,
                  symbolize::Symbolizer& symbolizer) {
  for (uint64_t return_address : frames) {
    const uint64_t pc = return_address - 1;
    const std::vector<symbolize::Frame> symbols = symbolizer.symbolize(pc);
    const uint64_t entry = symbols.empty() ? 0 : symbolizer.function_start(pc);
    bool printed = false;
    for (const symbolize::Frame& frame : symbols) {
      if (frame.function.empty()) continue;
      *out += "#\t";
      append_hex(out, pc);
      *out += '\t' + frame.function + '+';
      append_hex(out, entry != 0 && entry <= pc ? pc - entry : 0);
      *out += '\t' + frame.file + ':' + std::to_string(frame.line) + '\n';
      printed = true;
    }
    if (!printed) {
      *out += "#\t";
      append_hex(out, pc);
      *out += '\n';
    }
  }
  *out += '\n';
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
    for (uint64_t address : r.frames) {
      out += ' ';
      append_hex(&out, address);
    }
    out += '\n';
    append_stack(&out, r.frames, symbolizer);
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

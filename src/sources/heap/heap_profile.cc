#include "sources/heap/heap_profile.h"

#include <cmath>
#include <tuple>
#include <vector>

#include "profile/builder.h"

namespace cpprof::sources {

std::pair<int64_t, int64_t> scale_heap_sample(int64_t count, int64_t size, int64_t rate) {
  if (count == 0 || size == 0) return {0, 0};
  if (rate <= 1) return {count, size};
  const double average = static_cast<double>(size) / static_cast<double>(count);
  const double scale = 1 / (1 - std::exp(-average / static_cast<double>(rate)));
  return {static_cast<int64_t>(static_cast<double>(count) * scale),
          static_cast<int64_t>(static_cast<double>(size) * scale)};
}

RawHeapSample raw_heap_sample(const HeapBucket& bucket) {
  RawHeapSample raw;
  raw.frames = bucket.frames;
  raw.alloc_objects = static_cast<int64_t>(bucket.alloc_objects);
  raw.alloc_bytes = static_cast<int64_t>(bucket.alloc_bytes);
  // Frees are counted after their allocation, but a snapshot reads the
  // counters one by one: never report fewer than nothing in use.
  raw.inuse_objects = bucket.free_objects < bucket.alloc_objects
                          ? static_cast<int64_t>(bucket.alloc_objects - bucket.free_objects)
                          : 0;
  raw.inuse_bytes = bucket.free_bytes < bucket.alloc_bytes
                        ? static_cast<int64_t>(bucket.alloc_bytes - bucket.free_bytes)
                        : 0;
  raw.block_size = raw.alloc_objects > 0 ? raw.alloc_bytes / raw.alloc_objects : 0;
  return raw;
}

profile::Profile build_raw_heap_profile(std::span<const RawHeapSample> samples, int64_t rate,
                                        int64_t time_nanos, symbolize::Symbolizer& symbolizer,
                                        const std::string& default_sample_type) {
  profile::ProfileBuilder builder(symbolizer,
                                  {{"alloc_objects", "count"},
                                   {"alloc_space", "bytes"},
                                   {"inuse_objects", "count"},
                                   {"inuse_space", "bytes"}},
                                  {"space", "bytes"}, rate);
  // The builder's synthetic samples carry no labels: remember where they
  // are and label them once built.
  std::vector<std::pair<size_t, int64_t>> synthetic_labels;
  std::vector<uint64_t> stack;
  size_t index = 0;
  for (const RawHeapSample& raw : samples) {
    int64_t values[4];
    std::tie(values[0], values[1]) = scale_heap_sample(raw.alloc_objects, raw.alloc_bytes, rate);
    std::tie(values[2], values[3]) = scale_heap_sample(raw.inuse_objects, raw.inuse_bytes, rate);
    std::vector<profile::Label> labels;
    if (raw.block_size != 0) labels.push_back({"bytes", "", raw.block_size, "bytes"});
    if (raw.frames.empty()) {
      builder.add_synthetic_sample(kUnknownStackFrame, values);
      if (raw.block_size != 0) synthetic_labels.emplace_back(index, raw.block_size);
    } else {
      // Return addresses: the call instruction is the byte before.
      stack.clear();
      for (uint64_t address : raw.frames) stack.push_back(address - 1);
      builder.add_sample(stack, values, std::move(labels));
    }
    ++index;
  }
  builder.set_time(time_nanos, 0);
  if (!default_sample_type.empty()) builder.set_default_sample_type(default_sample_type);
  profile::Profile profile = builder.build();
  for (auto [at, block_size] : synthetic_labels) {
    profile.samples[at].labels.push_back({"bytes", "", block_size, "bytes"});
  }
  return profile;
}

profile::Profile build_heap_profile(const HeapSnapshot& snapshot, symbolize::Symbolizer& symbolizer,
                                    HeapProfileKind kind) {
  std::vector<RawHeapSample> samples;
  samples.reserve(snapshot.buckets.size());
  for (const HeapBucket& bucket : snapshot.buckets) samples.push_back(raw_heap_sample(bucket));
  return build_raw_heap_profile(samples, snapshot.rate, snapshot.time_nanos, symbolizer,
                                kind == HeapProfileKind::kAllocs ? "alloc_space" : "");
}

}  // namespace cpprof::sources

#include "sources/heap/scrape_delta.h"

#include <utility>

#include "sources/heap/heap_profile.h"

namespace cpprof::sources {
namespace {

// The previous totals of `raw` among `candidates` (the buckets its stack had
// then): the one of the same size, or, when the stack had and has a single
// bucket, that one even if its average size moved (cpprof's buckets are
// per stack, Go's per stack and size). nullptr for a new bucket.
template <class Seen>
const Seen* previous(const std::vector<Seen>* candidates, const RawHeapSample& raw,
                     size_t buckets_now) {
  if (candidates == nullptr) return nullptr;
  if (candidates->size() == 1 && buckets_now == 1) return &candidates->front();
  for (const Seen& seen : *candidates) {
    if (seen.block_size == raw.block_size) return &seen;
  }
  return nullptr;
}

}  // namespace

size_t ScrapeDelta::StackHash::operator()(const std::vector<uint64_t>& stack) const {
  uint64_t h = 1469598103934665603ull;
  for (uint64_t pc : stack) h = (h ^ pc) * 1099511628211ull;
  return static_cast<size_t>(h);
}

bool ScrapeDelta::next(const std::function<HeapSnapshot()>& take, symbolize::Symbolizer& symbolizer,
                       profile::Profile* out, std::string* unavailable) {
  std::lock_guard lock(mu_);
  const HeapSnapshot now = take();
  if (now.rate <= 0) {
    *unavailable = now.unavailable;
    return false;
  }
  std::unordered_map<std::vector<uint64_t>, size_t, StackHash> buckets_per_stack;
  for (const HeapBucket& bucket : now.buckets) ++buckets_per_stack[bucket.frames];

  SeenMap seen_now;
  std::vector<RawHeapSample> samples;
  for (const HeapBucket& bucket : now.buckets) {
    RawHeapSample raw = raw_heap_sample(bucket);
    seen_now[bucket.frames].push_back({raw.block_size, raw.alloc_objects, raw.alloc_bytes});
    auto it = seen_.find(bucket.frames);
    const Seen* before =
        previous(it == seen_.end() ? nullptr : &it->second, raw, buckets_per_stack[bucket.frames]);
    if (before != nullptr) {
      // Cumulative counts only grow; should a bucket ever restart, count it afresh.
      if (raw.alloc_objects >= before->alloc_objects && raw.alloc_bytes >= before->alloc_bytes) {
        raw.alloc_objects -= before->alloc_objects;
        raw.alloc_bytes -= before->alloc_bytes;
      }
    }
    // godeltaprof leaves out what unbiases to nothing.
    const auto zero = std::pair<int64_t, int64_t>{0, 0};
    if (scale_heap_sample(raw.alloc_objects, raw.alloc_bytes, now.rate) == zero &&
        scale_heap_sample(raw.inuse_objects, raw.inuse_bytes, now.rate) == zero) {
      continue;
    }
    samples.push_back(raw);
  }
  *out = build_raw_heap_profile(samples, now.rate, now.time_nanos, symbolizer, "");
  if (seen_nanos_ != 0 && now.time_nanos > seen_nanos_) {
    out->duration_nanos = now.time_nanos - seen_nanos_;
  }
  seen_ = std::move(seen_now);
  seen_nanos_ = now.time_nanos;
  return true;
}

}  // namespace cpprof::sources

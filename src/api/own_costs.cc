#include "api/own_costs.h"

#include <cstdio>
#include <string>

#include "capture/alloc_counters.h"
#include "capture/heap_buckets.h"
#include "capture/heap_sampler.h"
#include "capture/sampled_region.h"
#include "capture/thread_hooks.h"
#include "capture/thread_table.h"

namespace cpprof::api {

uint64_t OwnMemory::total() const {
  return sample_buffer + heap_stacks + sampled_objects + thread_records + alloc_counters;
}

OwnMemory own_memory(uint64_t sample_buffer_bytes) {
  OwnMemory memory;
  memory.sample_buffer = sample_buffer_bytes;
  memory.heap_stacks = capture::heap_bucket_memory_bytes();
  memory.sampled_objects = capture::sampled_region_overhead_bytes();
  memory.thread_records =
      capture::thread_table().memory_bytes() + capture::thread_records_memory_bytes();
  memory.alloc_counters = capture::alloc_counters_memory_bytes();
  return memory;
}

std::string format_bytes(uint64_t bytes) {
  constexpr uint64_t kKiB = 1024;
  constexpr uint64_t kMiB = kKiB * kKiB;
  if (bytes < kKiB) return std::to_string(bytes) + " B";
  if (bytes < kMiB) return std::to_string((bytes + kKiB / 2) / kKiB) + " KiB";
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / kMiB);
  return text;
}

std::string describe_own_memory(const OwnMemory& memory) {
  return format_bytes(memory.total()) + " (sample buffer " + format_bytes(memory.sample_buffer) +
         ", heap stacks " + format_bytes(memory.heap_stacks) +
         ", sampled objects' headers and free slots " + format_bytes(memory.sampled_objects) +
         ", thread records " + format_bytes(memory.thread_records) + ", allocation counters " +
         format_bytes(memory.alloc_counters) + "; its heap allocations not included)";
}

std::string describe_heap_samples_dropped() {
  return std::to_string(capture::heap_samples_dropped()) + " (and " +
         std::to_string(capture::heap_bucket_overflows()) +
         " kept without their stack: stack table full)";
}

}  // namespace cpprof::api

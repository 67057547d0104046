// cpprof's own costs for the index page: the memory its capture structures
// hold, and the heap samples it could not keep whole. Read from relaxed
// counters, so the page may be served while the hooks run.
#pragma once

#include <cstdint>
#include <string>

namespace cpprof::api {

// The memory cpprof's structures reserved up front hold now: the pages
// written so far (mapped or static, never-written pages take none). Not its
// heap allocations, whose live bytes are not tracked (that would cost every
// free).
struct OwnMemory {
  uint64_t sample_buffer = 0;    // the CPU sample ring
  uint64_t heap_stacks = 0;      // heap bucket table and its frame pool
  uint64_t sampled_objects = 0;  // headers, rounding and free slots of the sampled region
  uint64_t thread_records = 0;   // thread table, creation and start records
  uint64_t alloc_counters = 0;   // per-thread allocation counter blocks

  uint64_t total() const;
};

// Reads the capture layer's figures; `sample_buffer_bytes` comes from the
// CPU profiler, which owns the ring.
OwnMemory own_memory(uint64_t sample_buffer_bytes);

// "1.2 MiB (sample buffer 512 KiB, heap stacks 640 KiB, ...)", for the page.
std::string describe_own_memory(const OwnMemory& memory);

// "N B" under 1 KiB, "N KiB" under 1 MiB, else "N.N MiB" (rounded).
std::string format_bytes(uint64_t bytes);

// Heap samples not taken (the sampled region was full or could not be
// reserved), and those kept without their stack (the stack table was full).
std::string describe_heap_samples_dropped();

}  // namespace cpprof::api

// SampleRing: a bounded multi-producer, single-consumer queue of raw stack
// samples, where the producers are signal handlers.
//
// Producers (a SIGPROF handler on any thread) never wait: each claims the
// next cell by compare-and-swap on the write position and, if the ring is
// full, drops the sample and counts the drop. A cell carries a sequence
// number (Vyukov's bounded queue): a producer may write cell i only when
// its sequence says the consumer has emptied it, and publishes with a
// release store; the consumer reads a cell only when its sequence says it
// is complete. A producer interrupted mid-write merely delays the consumer
// at that cell until the next drain. The memory is one mmap made by
// reserve(), off any hot path; push() never allocates.
//
// push() is async-signal-safe and may run on any thread. pop() must be
// called from one thread at a time (callers serialise with their own lock).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cpprof::capture {

// One captured stack, as the handler saw it.
struct RawSample {
  static constexpr int kMaxFrames = 64;
  int32_t tid = 0;
  uint32_t depth = 0;              // entries used in `frames`
  uint64_t weight = 0;             // periods this sample stands for (1 + timer overruns)
  uint64_t stack_top[2] = {0, 0};  // the two words at the interrupted SP; 0 if unreadable
  bool leaf_unwound = false;       // frames[1] is the leaf's caller by its unwind row
  // frames[0] is the interrupted PC; the rest are return addresses of the
  // callers, outward (capture/unwind.h).
  uint64_t frames[kMaxFrames];  // left uninitialised: the handler must not call memset
};

class SampleRing {
 public:
  SampleRing() = default;
  ~SampleRing();
  SampleRing(const SampleRing&) = delete;
  SampleRing& operator=(const SampleRing&) = delete;

  // Maps memory for `cells` samples (rounded up to a power of two). Returns
  // false if the mapping failed. Call once, before any push().
  bool reserve(size_t cells);
  bool reserved() const { return cells_.load(std::memory_order_acquire) != nullptr; }

  // Copies `sample` into the ring; false (and a counted drop) if full or
  // not reserved. Async-signal-safe, lock-free, never waits.
  bool push(const RawSample& sample);

  // Takes the oldest complete sample into `out`; false if none is ready.
  bool pop(RawSample* out);

  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t pushed() const { return pushed_.load(std::memory_order_relaxed); }
  size_t capacity() const { return mask_ + 1; }
  size_t bytes() const;

 private:
  struct Cell {
    std::atomic<uint64_t> sequence;
    RawSample sample;
  };

  std::atomic<Cell*> cells_{nullptr};
  size_t mask_ = 0;
  alignas(64) std::atomic<uint64_t> write_pos_{0};
  alignas(64) uint64_t read_pos_ = 0;
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> pushed_{0};
};

}  // namespace cpprof::capture

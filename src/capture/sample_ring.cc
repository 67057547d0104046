#include "capture/sample_ring.h"

#include <sys/mman.h>

namespace cpprof::capture {
namespace {

// A loop rather than memcpy: someone may interpose libc's memcpy with code
// that is not safe here.
void copy_sample(RawSample* dst, const RawSample& src) {
  dst->tid = src.tid;
  dst->depth = src.depth;
  dst->weight = src.weight;
  dst->stack_top[0] = src.stack_top[0];
  dst->stack_top[1] = src.stack_top[1];
  for (uint32_t i = 0; i < src.depth && i < RawSample::kMaxFrames; ++i) {
    dst->frames[i] = src.frames[i];
  }
}

}  // namespace

SampleRing::~SampleRing() {
  if (Cell* cells = cells_.load(std::memory_order_acquire)) munmap(cells, bytes());
}

size_t SampleRing::bytes() const { return reserved() ? (mask_ + 1) * sizeof(Cell) : 0; }

bool SampleRing::reserve(size_t cells) {
  size_t n = 1;
  while (n < cells) n <<= 1;
  void* mem =
      mmap(nullptr, n * sizeof(Cell), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return false;
  Cell* c = static_cast<Cell*>(mem);
  for (size_t i = 0; i < n; ++i) c[i].sequence.store(i, std::memory_order_relaxed);
  mask_ = n - 1;
  cells_.store(c, std::memory_order_release);
  return true;
}

bool SampleRing::push(const RawSample& sample) {
  Cell* cells = cells_.load(std::memory_order_acquire);
  if (cells == nullptr) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  uint64_t pos = write_pos_.load(std::memory_order_relaxed);
  for (;;) {
    Cell& cell = cells[pos & mask_];
    uint64_t seq = cell.sequence.load(std::memory_order_acquire);
    auto diff = static_cast<int64_t>(seq - pos);
    if (diff == 0) {
      if (write_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        copy_sample(&cell.sample, sample);
        cell.sequence.store(pos + 1, std::memory_order_release);
        pushed_.fetch_add(1, std::memory_order_relaxed);
        return true;
      }
    } else if (diff < 0) {
      dropped_.fetch_add(1, std::memory_order_relaxed);  // full: never wait
      return false;
    } else {
      pos = write_pos_.load(std::memory_order_relaxed);
    }
  }
}

bool SampleRing::pop(RawSample* out) {
  Cell* cells = cells_.load(std::memory_order_acquire);
  if (cells == nullptr) return false;
  Cell& cell = cells[read_pos_ & mask_];
  uint64_t seq = cell.sequence.load(std::memory_order_acquire);
  if (seq != read_pos_ + 1) return false;
  copy_sample(out, cell.sample);
  cell.sequence.store(read_pos_ + mask_ + 1, std::memory_order_release);
  ++read_pos_;
  return true;
}

}  // namespace cpprof::capture

#include "capture/sampled_region.h"

#include <sys/mman.h>
#include <sys/resource.h>

#include <atomic>

namespace cpprof::capture {

RegionBounds g_sampled_region;

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kHeader = 16;
constexpr size_t kSpan = size_t{64} << 10;
constexpr size_t kReleaseBytes = size_t{64} << 10;  // runs this large go back to the kernel...
constexpr size_t kWarmBytes = size_t{1} << 20;      // ...except one per class up to this size
// In a header's size_class: the object's run was reused without going back
// to the kernel (a class's warm run), so its pages are not zero.
constexpr uint16_t kDirtyRun = 0x8000;
// Slot sizes of the small classes, header included.
constexpr uint32_t kSmall[] = {32,  48,  64,  80,  96,  112, 128,  160,  192,  224,  256, 320,
                               384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048};
constexpr size_t kSmallClasses = sizeof(kSmall) / sizeof(kSmall[0]);
constexpr size_t kLargeClasses = 100;  // page runs, four sizes per doubling
constexpr uint16_t kLargeBase = 128;   // class numbers in headers: small < 128 <= large

struct Header {
  uint32_t bucket;
  uint16_t size_class;
  uint16_t offset;  // from the slot's start to the object
  uint64_t requested;
};
static_assert(sizeof(Header) == kHeader);

struct Class {
  std::atomic<bool> lock{false};
  uintptr_t free_head = 0;  // slots freed, linked through their first word
  // Large classes: the last run freed, kept resident (not given back), so
  // that a program allocating and freeing one size in a loop does not
  // fault its pages in again for every sampled object.
  uintptr_t warm = 0;
  uintptr_t span_next = 0;  // small classes: the rest of the current span
  uintptr_t span_end = 0;
};
constinit Class g_small[kSmallClasses];
constinit Class g_large[kLargeClasses];

std::atomic<uintptr_t> g_bump{0};  // the next unused address of the region
uintptr_t g_end = 0;
std::atomic<int> g_state{0};  // 0: not reserved, 1: reserving, 2: ready, 3: failed
// cpprof's part of the region (the objects' requested bytes are the
// program's): headers and rounding of live objects, and freed slots kept
// resident for reuse. Touched on the sampled paths only.
std::atomic<uint64_t> g_overhead{0};
std::atomic<uint64_t> g_kept_free{0};

class ClassLock {
 public:
  explicit ClassLock(Class& c) : class_(c) {
    while (class_.lock.exchange(true, std::memory_order_acquire)) {
    }
  }
  ~ClassLock() { class_.lock.store(false, std::memory_order_release); }

 private:
  Class& class_;
};

bool reserve() {
  int state = g_state.load(std::memory_order_acquire);
  if (state == 2) return true;
  if (state == 3) return false;
  int expected = 0;
  if (!g_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    return false;  // another thread is reserving: this sample is not taken
  }
  // Address space only: MAP_NORESERVE, and pages are touched as objects
  // need them. Smaller tries for hosts with strict overcommit. Under an
  // address-space limit (ulimit -v) the reservation would count against the
  // program's own budget: take at most an eighth of it, or nothing.
  size_t cap = size_t{64} << 30;
  rlimit limit{};
  if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    cap = static_cast<size_t>(limit.rlim_cur) / 8;
  }
  for (size_t mib : {size_t{64} << 10, size_t{16} << 10, size_t{4} << 10, size_t{1} << 10,
                     size_t{256}, size_t{64}}) {
    const size_t bytes = mib << 20;
    if (bytes > cap) continue;
    void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) continue;
    const auto lo = reinterpret_cast<uintptr_t>(memory);
    g_bump.store(lo, std::memory_order_relaxed);
    g_end = lo + bytes;
    g_sampled_region.lo.store(lo, std::memory_order_relaxed);
    g_sampled_region.size.store(bytes, std::memory_order_release);
    g_state.store(2, std::memory_order_release);
    return true;
  }
  g_state.store(3, std::memory_order_release);
  return false;
}

uintptr_t carve(size_t bytes) {
  uintptr_t at = g_bump.fetch_add(bytes, std::memory_order_relaxed);
  return at + bytes <= g_end ? at : 0;
}

size_t small_class(size_t total) {
  for (size_t i = 0; i < kSmallClasses; ++i) {
    if (kSmall[i] >= total) return i;
  }
  return kSmallClasses;
}

// Large classes by page count: 1, 2, 3, 4, then four steps per doubling.
size_t large_class(size_t pages, size_t* class_pages) {
  if (pages <= 4) {
    *class_pages = pages;
    return pages - 1;
  }
  const int e = 63 - __builtin_clzll(pages - 1);  // pages in (2^e, 2^(e+1)]
  const size_t step = size_t{1} << (e - 2);
  const size_t q = (pages + step - 1) / step;  // 5..8
  *class_pages = q * step;
  return 4 + static_cast<size_t>(e - 2) * 4 + (q - 5);
}

uintptr_t pop(Class& c) {
  uintptr_t slot = c.free_head;
  if (slot != 0) c.free_head = *reinterpret_cast<uintptr_t*>(slot);
  return slot;
}

void push(Class& c, uintptr_t slot) {
  *reinterpret_cast<uintptr_t*>(slot) = c.free_head;
  c.free_head = slot;
}

void* finish(uintptr_t slot, size_t offset, uint16_t size_class, size_t size, uint32_t bucket) {
  auto* header = reinterpret_cast<Header*>(slot + offset - kHeader);
  header->bucket = bucket;
  header->size_class = size_class;
  header->offset = static_cast<uint16_t>(offset);
  header->requested = size;
  return reinterpret_cast<void*>(slot + offset);
}

// What a live object holds beyond the bytes it asked for: the rest of its
// small slot, header included; or, in a page run, its header, alignment
// and the rest of its last page (pages past its end are never written,
// unless a larger object of the class wrote them before: not counted).
uint64_t object_overhead(uint16_t size_class, size_t offset, uint64_t requested) {
  if (size_class < kLargeBase) return kSmall[size_class] - requested;
  return ((offset + requested + kPage - 1) & ~(kPage - 1)) - requested;
}

// Freed runs smaller than this stay resident on their class's free list.
bool kept_resident(size_t run_bytes) { return run_bytes < kReleaseBytes; }

void add(std::atomic<uint64_t>& counter, uint64_t bytes) {
  counter.fetch_add(bytes, std::memory_order_relaxed);
}
void sub(std::atomic<uint64_t>& counter, uint64_t bytes) {
  counter.fetch_sub(bytes, std::memory_order_relaxed);
}

const Header& header_of(const void* ptr) {
  return *reinterpret_cast<const Header*>(static_cast<const char*>(ptr) - kHeader);
}

size_t slot_bytes(uint16_t size_class) {
  if (size_class < kLargeBase) return kSmall[size_class];
  // Inverse of large_class().
  const size_t index = size_class - kLargeBase;
  if (index < 4) return (index + 1) * kPage;
  const size_t e = (index - 4) / 4 + 2;
  const size_t q = (index - 4) % 4 + 5;
  return q * (size_t{1} << (e - 2)) * kPage;
}

}  // namespace

void* sampled_alloc(size_t size, size_t alignment, uint32_t bucket) {
  if (!reserve()) return nullptr;
  if (alignment < kHeader) alignment = kHeader;
  if (alignment > kPage) return nullptr;
  if (alignment == kHeader && size <= kSmall[kSmallClasses - 1] - kHeader) {
    const size_t index = small_class(size + kHeader);
    Class& c = g_small[index];
    uintptr_t slot = 0;
    {
      ClassLock lock(c);
      slot = pop(c);
      if (slot != 0) {
        sub(g_kept_free, kSmall[index]);
      } else {
        if (c.span_next + kSmall[index] > c.span_end) {
          const uintptr_t span = carve(kSpan);
          if (span == 0) return nullptr;
          c.span_next = span;
          c.span_end = span + kSpan;
        }
        slot = c.span_next;
        c.span_next += kSmall[index];
      }
    }
    add(g_overhead, object_overhead(static_cast<uint16_t>(index), kHeader, size));
    return finish(slot, kHeader, static_cast<uint16_t>(index), size, bucket);
  }
  // A page run: the object starts `alignment` bytes in, its header before it.
  if (size > g_sampled_region.size.load(std::memory_order_relaxed)) return nullptr;
  size_t class_pages = 0;
  const size_t index = large_class((size + alignment + kPage - 1) / kPage, &class_pages);
  if (index >= kLargeClasses) return nullptr;
  Class& c = g_large[index];
  uintptr_t slot = 0;
  uint16_t dirty = 0;
  {
    ClassLock lock(c);
    if (c.warm != 0) {
      slot = c.warm;
      c.warm = 0;
      dirty = kDirtyRun;
      sub(g_kept_free, class_pages * kPage);
    } else {
      slot = pop(c);
      if (slot != 0 && kept_resident(class_pages * kPage)) sub(g_kept_free, class_pages * kPage);
    }
  }
  if (slot == 0) slot = carve(class_pages * kPage);
  if (slot == 0) return nullptr;
  add(g_overhead, object_overhead(static_cast<uint16_t>(kLargeBase + index), alignment, size));
  return finish(slot, alignment, static_cast<uint16_t>((kLargeBase + index) | dirty), size, bucket);
}

void sampled_free(void* ptr, uint32_t* bucket, uint64_t* requested) {
  const Header& header = header_of(ptr);
  *bucket = header.bucket;
  *requested = header.requested;
  const uint16_t size_class = header.size_class & ~kDirtyRun;
  const uintptr_t slot = reinterpret_cast<uintptr_t>(ptr) - header.offset;
  const size_t bytes = slot_bytes(size_class);
  sub(g_overhead, object_overhead(size_class, header.offset, header.requested));
  if (size_class < kLargeBase) {
    Class& c = g_small[size_class];
    add(g_kept_free, bytes);
    ClassLock lock(c);
    push(c, slot);
    return;
  }
  // Give the pages of large runs back (the range is kept for the next
  // object of the class), but keep one run per class up to kWarmBytes
  // resident; small runs stay resident for reuse, sparing a system call
  // and TLB flushes per free when many objects are sampled. A loop of
  // 400 KB allocations at the default rate faulted ~52 pages per call
  // when every run went back.
  Class& c = g_large[size_class - kLargeBase];
  if (bytes < kWarmBytes) {
    ClassLock lock(c);
    if (c.warm == 0) {
      add(g_kept_free, bytes);
      c.warm = slot;
      return;
    }
  }
  if (kept_resident(bytes)) {
    add(g_kept_free, bytes);
  } else {
    madvise(reinterpret_cast<void*>(slot), bytes, MADV_DONTNEED);
  }
  ClassLock lock(c);
  push(c, slot);
}

bool sampled_needs_zeroing(const void* ptr) {
  const uint16_t size_class = header_of(ptr).size_class;
  if ((size_class & kDirtyRun) != 0) return true;
  if (size_class >= kLargeBase) return slot_bytes(size_class) < kReleaseBytes;
  return true;
}

size_t sampled_usable_size(const void* ptr) {
  const Header& header = header_of(ptr);
  return slot_bytes(header.size_class & ~kDirtyRun) - header.offset;
}

uint64_t sampled_region_overhead_bytes() {
  // Two loads, not one snapshot: a slot moving between them may be counted
  // twice or not at all, off by one slot for an instant.
  return g_overhead.load(std::memory_order_relaxed) + g_kept_free.load(std::memory_order_relaxed);
}

void lock_sampled_region_for_fork() {
  for (Class& c : g_small) {
    while (c.lock.exchange(true, std::memory_order_acquire)) {
    }
  }
  for (Class& c : g_large) {
    while (c.lock.exchange(true, std::memory_order_acquire)) {
    }
  }
}

void unlock_sampled_region_after_fork() {
  for (Class& c : g_small) c.lock.store(false, std::memory_order_release);
  for (Class& c : g_large) c.lock.store(false, std::memory_order_release);
}

}  // namespace cpprof::capture

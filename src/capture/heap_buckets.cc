#include "capture/heap_buckets.h"

#include <sys/mman.h>

#include "capture/signal_safe.h"

namespace cpprof::capture {
namespace {

constexpr size_t kCapacity = size_t{1} << 16;  // slots; at most 3/4 used
constexpr size_t kMaxUsed = kCapacity / 4 * 3;
constexpr size_t kPoolFrames = size_t{1} << 22;  // 32 MiB of frames, mapped untouched
constexpr uint32_t kOverflow = 0;                // slot 0: the bucket without a stack

struct Bucket {
  std::atomic<uint64_t> hash{0};  // 0: empty; stored last, once the rest is filled in
  uint32_t frames_at = 0;         // index into the pool
  uint32_t depth = 0;
  uint64_t size = 0;  // bytes each allocation of the bucket asked for
  std::atomic<uint64_t> alloc_objects{0};
  std::atomic<uint64_t> alloc_bytes{0};
  std::atomic<uint64_t> free_objects{0};
  std::atomic<uint64_t> free_bytes{0};
};

constexpr size_t kPage = 4096;
constexpr size_t kTablePages = (kCapacity * sizeof(Bucket) + kPage - 1) / kPage;

std::atomic<Bucket*> g_table{nullptr};
std::atomic<uint64_t*> g_pool{nullptr};
std::atomic<size_t> g_pool_used{0};  // written under g_lock
// Pages of the table written so far (a bit each): only they hold memory;
// the rest is untouched or, once a snapshot has read it, the zero page.
std::atomic<uint64_t> g_written_pages[(kTablePages + 63) / 64];
std::atomic<size_t> g_used{1};
std::atomic<uint64_t> g_overflows{0};
std::atomic<bool> g_lock{false};
std::atomic<bool> g_map_failed{false};

class SpinLock {
 public:
  SpinLock() {
    while (g_lock.exchange(true, std::memory_order_acquire)) {
    }
  }
  ~SpinLock() { g_lock.store(false, std::memory_order_release); }
};

void* map(size_t bytes) {
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return memory == MAP_FAILED ? nullptr : memory;
}

// The table, mapped on first use; nullptr if mapping failed.
Bucket* table() {
  Bucket* table = g_table.load(std::memory_order_acquire);
  if (table != nullptr || g_map_failed.load(std::memory_order_relaxed)) return table;
  SpinLock lock;
  table = g_table.load(std::memory_order_relaxed);
  if (table != nullptr) return table;
  auto* memory = static_cast<Bucket*>(map(kCapacity * sizeof(Bucket)));
  auto* pool = static_cast<uint64_t*>(map(kPoolFrames * sizeof(uint64_t)));
  if (memory == nullptr || pool == nullptr) {
    if (memory != nullptr) munmap(memory, kCapacity * sizeof(Bucket));
    if (pool != nullptr) munmap(pool, kPoolFrames * sizeof(uint64_t));
    g_map_failed.store(true, std::memory_order_relaxed);
    return nullptr;
  }
  // Zero-filled memory is a table of empty buckets (std::atomic<uint64_t>
  // is a plain word on this platform).
  g_pool.store(pool, std::memory_order_relaxed);
  g_table.store(memory, std::memory_order_release);
  return memory;
}

// Records that the bucket in `slot` is about to be written.
void note_written(size_t slot) {
  const size_t first = slot * sizeof(Bucket) / kPage;
  const size_t last = ((slot + 1) * sizeof(Bucket) - 1) / kPage;
  for (size_t page = first; page <= last; ++page) {
    const uint64_t bit = uint64_t{1} << (page % 64);
    std::atomic<uint64_t>& word = g_written_pages[page / 64];
    if ((word.load(std::memory_order_relaxed) & bit) == 0) {
      word.fetch_or(bit, std::memory_order_relaxed);
    }
  }
}

// Not __builtin_popcountll (nor a loop the compiler turns into it): without
// -mpopcnt that is a call into libgcc.
uint64_t bits_set(uint64_t x) {
  x -= (x >> 1) & 0x5555555555555555ull;
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return (x * 0x0101010101010101ull) >> 56;
}

// A sample that goes to the overflow bucket (written then, if the table exists).
uint32_t overflow() {
  g_overflows.fetch_add(1, std::memory_order_relaxed);
  if (g_table.load(std::memory_order_relaxed) != nullptr) note_written(kOverflow);
  return kOverflow;
}

uint64_t hash_frames(const uint64_t* frames, size_t depth, uint64_t size) {
  uint64_t h = (0x9e3779b97f4a7c15ull ^ depth) + size * 0xc2b2ae3d27d4eb4full;
  for (size_t i = 0; i < depth; ++i) {
    h ^= frames[i];
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  return h | 1;  // never 0, the empty mark
}

bool same_stack(const Bucket& bucket, const uint64_t* pool, const uint64_t* frames, size_t depth,
                uint64_t size) {
  if (bucket.depth != depth || bucket.size != size) return false;
  const uint64_t* stored = pool + bucket.frames_at;
  for (size_t i = 0; i < depth; ++i) {
    if (stored[i] != frames[i]) return false;
  }
  return true;
}

// The slot holding (hash, frames), or the first empty slot on its probe
// sequence (kCapacity if the probe ran through the whole table).
size_t probe(Bucket* buckets, const uint64_t* pool, uint64_t hash, const uint64_t* frames,
             size_t depth, uint64_t size) {
  for (size_t n = 0; n < kCapacity; ++n) {
    size_t slot = (hash + n) & (kCapacity - 1);
    if (slot == kOverflow) continue;
    uint64_t stored = buckets[slot].hash.load(std::memory_order_acquire);
    if (stored == 0) return slot;
    if (stored == hash && same_stack(buckets[slot], pool, frames, depth, size)) return slot;
  }
  return kCapacity;
}

}  // namespace

uint32_t heap_bucket_for(const uint64_t* frames, size_t depth, uint64_t size) {
  Bucket* buckets = table();
  if (buckets == nullptr) return overflow();
  uint64_t* pool = g_pool.load(std::memory_order_relaxed);
  const uint64_t hash = hash_frames(frames, depth, size);
  size_t slot = probe(buckets, pool, hash, frames, depth, size);
  if (slot < kCapacity && buckets[slot].hash.load(std::memory_order_acquire) == hash) {
    return static_cast<uint32_t>(slot);
  }
  SpinLock lock;
  slot = probe(buckets, pool, hash, frames, depth, size);  // another thread may have added it
  if (slot < kCapacity && buckets[slot].hash.load(std::memory_order_relaxed) == hash) {
    return static_cast<uint32_t>(slot);
  }
  const size_t pool_used = g_pool_used.load(std::memory_order_relaxed);
  if (slot == kCapacity || g_used.load(std::memory_order_relaxed) >= kMaxUsed ||
      pool_used + depth > kPoolFrames) {
    return overflow();
  }
  Bucket& bucket = buckets[slot];
  note_written(slot);
  for (size_t i = 0; i < depth; ++i) pool[pool_used + i] = frames[i];
  bucket.frames_at = static_cast<uint32_t>(pool_used);
  bucket.depth = static_cast<uint32_t>(depth);
  bucket.size = size;
  g_pool_used.store(pool_used + depth, std::memory_order_relaxed);
  g_used.fetch_add(1, std::memory_order_relaxed);
  bucket.hash.store(hash, std::memory_order_release);
  return static_cast<uint32_t>(slot);
}

void heap_bucket_alloc(uint32_t bucket, uint64_t bytes) {
  Bucket* buckets = g_table.load(std::memory_order_acquire);
  if (buckets == nullptr) return;
  buckets[bucket].alloc_objects.fetch_add(1, std::memory_order_relaxed);
  buckets[bucket].alloc_bytes.fetch_add(bytes, std::memory_order_relaxed);
}

void heap_bucket_free(uint32_t bucket, uint64_t bytes) {
  Bucket* buckets = g_table.load(std::memory_order_acquire);
  if (buckets == nullptr) return;
  buckets[bucket].free_objects.fetch_add(1, std::memory_order_relaxed);
  buckets[bucket].free_bytes.fetch_add(bytes, std::memory_order_relaxed);
}

void for_each_heap_bucket(void (*visit)(const uint64_t* frames, size_t depth,
                                        const HeapBucketCounts& counts, void* context),
                          void* context) {
  Bucket* buckets = g_table.load(std::memory_order_acquire);
  if (buckets == nullptr) return;
  const uint64_t* pool = g_pool.load(std::memory_order_relaxed);
  for (size_t slot = 0; slot < kCapacity; ++slot) {
    const Bucket& bucket = buckets[slot];
    if (slot != kOverflow && bucket.hash.load(std::memory_order_acquire) == 0) continue;
    HeapBucketCounts counts;
    // Frees after allocations: a free counted between the two loads must
    // not make in-use negative.
    counts.free_objects = bucket.free_objects.load(std::memory_order_relaxed);
    counts.free_bytes = bucket.free_bytes.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    counts.alloc_objects = bucket.alloc_objects.load(std::memory_order_relaxed);
    counts.alloc_bytes = bucket.alloc_bytes.load(std::memory_order_relaxed);
    if (counts.alloc_objects == 0) continue;
    visit(pool + bucket.frames_at, bucket.depth, counts, context);
  }
}

size_t heap_bucket_count() { return g_used.load(std::memory_order_relaxed) - 1; }
uint64_t heap_bucket_overflows() { return g_overflows.load(std::memory_order_relaxed); }

uint64_t heap_bucket_memory_bytes() {
  uint64_t pages = 0;
  for (const std::atomic<uint64_t>& word : g_written_pages) {
    pages += bits_set(word.load(std::memory_order_relaxed));
  }
  const uint64_t* pool = g_pool.load(std::memory_order_relaxed);
  const size_t frames = g_pool_used.load(std::memory_order_relaxed);
  return pages * kPage + (pool == nullptr ? 0 : pages_spanned(pool, frames * sizeof(uint64_t)));
}

void lock_heap_buckets_for_fork() {
  while (g_lock.exchange(true, std::memory_order_acquire)) {
  }
}

void unlock_heap_buckets_after_fork() { g_lock.store(false, std::memory_order_release); }

}  // namespace cpprof::capture

// Pool<T>: reuse of temporary objects, the counterpart of Go's sync.Pool.
//
//   cpprof::Pool<Buffer> buffers;         // or buffers({.per_thread = 4, .make = ...})
//   auto buffer = buffers.get();          // a kept Buffer (a hit) or a new one (a miss)
//   buffer->clear();                      // the caller resets state, as in Go
//   ...
//   buffers.put(std::move(buffer));       // kept for a later get(), or destroyed
//
//   {
//     auto lease = buffers.lease();       // get() now, put() at the end of the scope
//     lease->append(bytes);
//   }
//
// A pool hands out objects in whatever state put() left them: resetting
// them is the caller's job (or Options::reset's, called by put()). Unlike
// Go's Pool, which the garbage collector empties, this one is bounded: it
// keeps at most `per_thread` objects for each thread and `shared` more in
// one shared list, and destroys what put() gives it beyond that ("dropped").
//
// How it works. Each thread that puts an object into any pool takes a
// small integer, its thread index: the lowest free one of a process-wide
// set of 4096, given back when the thread exits. Every pool keeps, per
// index, a slot of up to `per_thread` objects; slots come in chunks of 32
// (one per 32 indices, allocated by the pool at the first put() of a thread
// of that chunk) found through a fixed table of chunk pointers. A slot is
// used only by the thread holding its index, so a get() or put() served by
// it takes no lock, does no atomic read-modify-write and allocates nothing.
// When its slot is empty (get) or full (put), a thread falls back to the
// pool's shared list, behind a mutex: that is how objects move between
// threads. A thread remembers only its index, nothing about any pool, so
// pools can come and go (a new one at a dead one's address included) while
// threads run, and no thread can meet a stale cache.
//
// Who destroys what. Objects a pool keeps, in any slot or the shared list,
// belong to the pool, and ~Pool destroys all of them, those kept for
// threads that are still running included. A thread that exits hands the
// objects kept for it to each live pool's shared list, as many as fit; the
// rest stay in its index's slot, for the next thread to take that index,
// until the pool is destroyed. T's destructor therefore runs in put() (a
// dropped object) and in ~Pool, never at thread exit. Objects handed out
// belong to their std::unique_ptr and may outlive the pool.
//
// To find the live pools, an exiting thread walks a process-wide list of
// them under one mutex, which pool construction and destruction and the
// first put() of a thread also take; get() and put() otherwise never do.
// Lock order: that registry mutex, then a pool's shared-list mutex. T's
// constructors and destructors never run under either.
//
// Threads past 4096 at once, and code in a thread's thread_local
// destructors after the pools' exit hook has run, have no slot: they use the
// shared list only (correct, slower). The registry and the thread index have
// default visibility, so every shared object that includes this header
// shares one copy of them (two copies could give two threads the same
// index).
//
// Memory per pool: about 1 KiB for the chunk table, the shared list's
// `shared` pointers, and per 32 threads a chunk of 32 slots, each 40 bytes
// of counters plus 8 per kept object, rounded up to 64 so that threads never
// share a cache line.
//
// Thread safety: every member function may be called from any thread at
// once, except that a pool is destroyed only when no thread is inside one of
// its functions any more (the threads need not have exited). After fork(),
// the child's pools keep the objects of the parent's other threads until
// they are destroyed.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpprof/export.h"

namespace cpprof {

// A pool's counters since it was created. Each counter is read without
// stopping other threads, so the set is exact only while no other thread
// uses the pool.
struct PoolStats {
  uint64_t hits = 0;     // get() calls answered with a kept object
  uint64_t misses = 0;   // get() calls answered by the factory
  uint64_t puts = 0;     // non-null objects given to put() (Lease included)
  uint64_t dropped = 0;  // of those, destroyed because the pool was full
};

namespace detail {

inline constexpr std::uint32_t kPoolMaxThreads = 4096;
inline constexpr std::uint32_t kPoolChunkSlots = 32;
// pool_thread_slot's value when the thread may not have a slot.
inline constexpr std::uint32_t kPoolNoIndex = UINT32_MAX;

// What the registry knows of a live pool.
struct PoolNode {
  void (*on_thread_exit)(PoolNode* pool, std::uint32_t index) noexcept = nullptr;
  PoolNode* prev = nullptr;
  PoolNode* next = nullptr;
};

// Keeps a static object alive to the end: threads may exit after static
// destruction, and still need the registry.
template <class V>
union NoDestroy {
  constexpr NoDestroy() : value() {}
  ~NoDestroy() {}
  V value;
};

// The process-wide registry: live pools and the thread indices taken.
struct PoolRegistry {
  std::mutex mu;
  PoolNode* pools = nullptr;
  std::uint64_t taken[kPoolMaxThreads / 64] = {};
};

CPPROF_EXPORT inline constinit NoDestroy<PoolRegistry> pool_registry;

// The calling thread's index + 1; 0 until it takes one; kPoolNoIndex when it
// cannot have one (all taken, or the thread is exiting).
CPPROF_EXPORT inline constinit thread_local std::uint32_t pool_thread_slot = 0;

inline void release_pool_thread_index() noexcept;

// Gives the thread's index back when the thread exits; armed on first use.
struct PoolThreadExit {
  bool armed = false;
  ~PoolThreadExit() {
    if (armed) release_pool_thread_index();
  }
};

CPPROF_EXPORT inline thread_local PoolThreadExit pool_thread_exit;

// Takes the lowest free index for the calling thread; returns the new
// pool_thread_slot. The first call of a thread registers its exit hook
// (the C++ runtime allocates a few bytes for that, once).
[[gnu::noinline]] inline std::uint32_t acquire_pool_thread_index() noexcept {
  std::uint32_t& slot = pool_thread_slot;
  if (slot != 0) return slot;
  PoolRegistry& registry = pool_registry.value;
  {
    std::lock_guard lock(registry.mu);
    slot = kPoolNoIndex;
    for (std::uint32_t word = 0; word < kPoolMaxThreads / 64; ++word) {
      const std::uint64_t free_bits = ~registry.taken[word];
      if (free_bits == 0) continue;
      const int bit = __builtin_ctzll(free_bits);
      registry.taken[word] |= std::uint64_t{1} << bit;
      slot = word * 64 + static_cast<std::uint32_t>(bit) + 1;
      break;
    }
  }
  if (slot != kPoolNoIndex) pool_thread_exit.armed = true;
  return slot;
}

// At thread exit: lets every live pool take back the thread's objects, then
// frees the index. Later pool calls on this thread use shared lists only.
inline void release_pool_thread_index() noexcept {
  const std::uint32_t index = pool_thread_slot - 1;
  pool_thread_slot = kPoolNoIndex;
  PoolRegistry& registry = pool_registry.value;
  std::lock_guard lock(registry.mu);
  for (PoolNode* pool = registry.pools; pool != nullptr; pool = pool->next) {
    pool->on_thread_exit(pool, index);
  }
  registry.taken[index / 64] &= ~(std::uint64_t{1} << (index % 64));
}

inline void register_pool(PoolNode* pool) noexcept {
  PoolRegistry& registry = pool_registry.value;
  std::lock_guard lock(registry.mu);
  pool->next = registry.pools;
  if (registry.pools != nullptr) registry.pools->prev = pool;
  registry.pools = pool;
}

inline void unregister_pool(PoolNode* pool) noexcept {
  PoolRegistry& registry = pool_registry.value;
  std::lock_guard lock(registry.mu);
  (pool->prev != nullptr ? pool->prev->next : registry.pools) = pool->next;
  if (pool->next != nullptr) pool->next->prev = pool->prev;
}

}  // namespace detail

// A bounded set of reusable T objects with per-thread caches (see above).
// Neither copyable nor movable: the registry knows it by address.
template <class T>
class Pool : private detail::PoolNode {
 public:
  // Bounds and callbacks, fixed at construction.
  struct Options {
    // Objects kept for each thread, served without a lock. At most 256
    // (larger values count as 256); 0 sends every object to the shared list.
    std::size_t per_thread = 8;
    // Objects kept in the shared list, which every thread can reach.
    std::size_t shared = 64;
    // Makes an object on a miss; default std::make_unique<T>(). May return
    // null, which get() then returns.
    std::function<std::unique_ptr<T>()> make;
    // Called by put() on every object it receives, before keeping it;
    // default none (the caller resets). Must not throw when used by Lease.
    std::function<void(T&)> reset;
  };

  class Lease;

  // A pool with the default Options.
  Pool() : Pool(Options{}) {}

  // A pool with these bounds and callbacks. Throws std::invalid_argument
  // when T is not default-constructible and options.make is empty.
  explicit Pool(Options options)
      : per_thread_(options.per_thread < kMaxPerThread ? options.per_thread : kMaxPerThread),
        shared_capacity_(options.shared),
        stride_(slot_stride(per_thread_)),
        make_(std::move(options.make)),
        reset_(std::move(options.reset)) {
    if (!make_) {
      if constexpr (std::is_default_constructible_v<T>) {
        make_ = [] { return std::make_unique<T>(); };
      } else {
        throw std::invalid_argument("cpprof::Pool: T is not default-constructible; set make");
      }
    }
    shared_.reserve(shared_capacity_);  // put() never grows it
    on_thread_exit = &Pool::take_back_thread_objects;
    detail::register_pool(this);
  }

  // Destroys every object the pool keeps, those kept for running threads
  // included. No thread may be inside a function of this pool.
  ~Pool() {
    detail::unregister_pool(this);
    for (std::atomic<std::byte*>& entry : chunks_) {
      std::byte* chunk = entry.load(std::memory_order_acquire);
      if (chunk == nullptr) continue;
      for (std::uint32_t i = 0; i < detail::kPoolChunkSlots; ++i) {
        Slot* slot = slot_in(chunk, i);
        for (std::uint32_t k = 0; k < slot->count; ++k) delete objects(slot)[k];
      }
      std::free(chunk);
    }
    for (T* object : shared_) delete object;
  }

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // A kept object (a hit): the calling thread's most recently put one, else
  // one from the shared list; or, if there is none, a new one from the
  // factory (a miss). Never allocates on a hit.
  std::unique_ptr<T> get() {
    Slot* mine = my_slot();
    if (mine != nullptr && mine->count > 0) {
      bump(mine->hits);
      return std::unique_ptr<T>(objects(mine)[--mine->count]);
    }
    if (T* kept = pop_shared()) {
      count(mine, &Slot::hits, hits_);
      return std::unique_ptr<T>(kept);
    }
    count(mine, &Slot::misses, misses_);
    return make_();
  }

  // Keeps `object` for a later get(): in the calling thread's slot, else in
  // the shared list; if both are full, destroys it (dropped). Null is
  // ignored. Allocates only when the calling thread first needs a slot: its
  // index's exit hook (once per thread) and its chunk (once per 32 indices).
  void put(std::unique_ptr<T> object) {
    if (object == nullptr) return;
    if (reset_) reset_(*object);
    Slot* mine = my_slot_for_put();
    count(mine, &Slot::puts, puts_);
    if (mine != nullptr && mine->count < per_thread_) {
      objects(mine)[mine->count++] = object.release();
      return;
    }
    if (push_shared(object)) return;
    count(mine, &Slot::dropped, dropped_);
    // `object` is destroyed here, outside the lock.
  }

  // get(), in a handle that put()s the object back when it is destroyed.
  Lease lease() { return Lease(this, get()); }

  // The counters, summed over every thread's slot.
  PoolStats stats() const {
    PoolStats total{hits_.load(std::memory_order_relaxed), misses_.load(std::memory_order_relaxed),
                    puts_.load(std::memory_order_relaxed),
                    dropped_.load(std::memory_order_relaxed)};
    for (const std::atomic<std::byte*>& entry : chunks_) {
      std::byte* chunk = entry.load(std::memory_order_acquire);
      if (chunk == nullptr) continue;
      for (std::uint32_t i = 0; i < detail::kPoolChunkSlots; ++i) {
        const Slot* slot = slot_in(chunk, i);
        total.hits += slot->hits.load(std::memory_order_relaxed);
        total.misses += slot->misses.load(std::memory_order_relaxed);
        total.puts += slot->puts.load(std::memory_order_relaxed);
        total.dropped += slot->dropped.load(std::memory_order_relaxed);
      }
    }
    return total;
  }

  // An object from get() that goes back to its pool when the lease ends.
  // Move-only; must end before the pool is destroyed (or be release()d).
  class Lease {
   public:
    // An empty lease, holding nothing.
    Lease() = default;
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), object_(std::move(other.object_)) {}
    // Puts back the object held, then takes over `other`'s.
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        give_back();
        pool_ = std::exchange(other.pool_, nullptr);
        object_ = std::move(other.object_);
      }
      return *this;
    }
    // Puts the object back into the pool.
    ~Lease() { give_back(); }

    // The object; the lease must not be empty.
    T& operator*() const noexcept { return *object_; }
    T* operator->() const noexcept { return object_.get(); }
    // The object, or null for an empty lease.
    T* get() const noexcept { return object_.get(); }
    // Whether the lease holds an object.
    explicit operator bool() const noexcept { return object_ != nullptr; }

    // Takes the object out of the lease; it will not go back to the pool.
    std::unique_ptr<T> release() noexcept {
      pool_ = nullptr;
      return std::move(object_);
    }

   private:
    friend class Pool;
    Lease(Pool* pool, std::unique_ptr<T> object) noexcept
        : pool_(pool), object_(std::move(object)) {}
    void give_back() noexcept {
      if (object_ != nullptr) pool_->put(std::move(object_));
    }

    Pool* pool_ = nullptr;
    std::unique_ptr<T> object_;
  };

 private:
  static constexpr std::size_t kMaxPerThread = 256;
  static constexpr std::size_t kCacheLine = 64;

  // One thread index's cache; `per_thread_` object pointers follow it in
  // the same block. Written only by the thread holding the index (and by
  // ~Pool); the counters are atomic so that stats() may read them.
  struct Slot {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<std::uint64_t> puts{0};
    std::atomic<std::uint64_t> dropped{0};
    std::uint32_t count = 0;
  };
  static_assert(sizeof(Slot) % alignof(T*) == 0);

  static std::size_t slot_stride(std::size_t per_thread) {
    const std::size_t bytes = sizeof(Slot) + per_thread * sizeof(T*);
    return (bytes + kCacheLine - 1) / kCacheLine * kCacheLine;
  }

  static T** objects(Slot* slot) noexcept {
    return reinterpret_cast<T**>(reinterpret_cast<std::byte*>(slot) + sizeof(Slot));
  }

  Slot* slot_in(std::byte* chunk, std::uint32_t index) const noexcept {
    return reinterpret_cast<Slot*>(chunk + (index % detail::kPoolChunkSlots) * stride_);
  }

  Slot* slot(std::uint32_t index) const noexcept {
    std::byte* chunk = chunks_[index / detail::kPoolChunkSlots].load(std::memory_order_acquire);
    return chunk != nullptr ? slot_in(chunk, index) : nullptr;
  }

  // The calling thread's slot, or null: no index yet, none to be had, or
  // its chunk not allocated yet (then the slot is empty anyway).
  Slot* my_slot() const noexcept {
    const std::uint32_t index = detail::pool_thread_slot - 1;  // 0 and kPoolNoIndex wrap
    return index < detail::kPoolMaxThreads ? slot(index) : nullptr;
  }

  // The calling thread's slot, taking an index and allocating its chunk if
  // need be; null when there is none to be had (or no memory for it).
  Slot* my_slot_for_put() noexcept {
    if (per_thread_ == 0) return my_slot();
    std::uint32_t slot_value = detail::pool_thread_slot;
    if (slot_value == 0) slot_value = detail::acquire_pool_thread_index();
    const std::uint32_t index = slot_value - 1;
    if (index >= detail::kPoolMaxThreads) return nullptr;
    Slot* mine = slot(index);
    return mine != nullptr ? mine : add_chunk(index);
  }

  [[gnu::noinline]] Slot* add_chunk(std::uint32_t index) noexcept {
    // stride_ is a multiple of the alignment, as aligned_alloc requires.
    void* memory = std::aligned_alloc(kCacheLine, detail::kPoolChunkSlots * stride_);
    if (memory == nullptr) return nullptr;
    std::byte* chunk = static_cast<std::byte*>(memory);
    for (std::uint32_t i = 0; i < detail::kPoolChunkSlots; ++i) new (chunk + i * stride_) Slot;
    std::byte* expected = nullptr;
    if (!chunks_[index / detail::kPoolChunkSlots].compare_exchange_strong(
            expected, chunk, std::memory_order_acq_rel, std::memory_order_acquire)) {
      std::free(memory);  // another thread won
      chunk = expected;
    }
    return slot_in(chunk, index);
  }

  // Only the owning thread writes a slot's counters: no read-modify-write.
  static void bump(std::atomic<std::uint64_t>& counter) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  static void count(Slot* mine, std::atomic<std::uint64_t> Slot::*field,
                    std::atomic<std::uint64_t>& shared_counter) noexcept {
    if (mine != nullptr) {
      bump(mine->*field);
    } else {
      shared_counter.fetch_add(1, std::memory_order_relaxed);
    }
  }

  T* pop_shared() {
    // A hint, to skip the lock when the list is empty; a put() racing with
    // it may be missed, which a pool may always do.
    if (shared_size_.load(std::memory_order_relaxed) == 0) return nullptr;
    std::lock_guard lock(mu_);
    if (shared_.empty()) return nullptr;
    T* object = shared_.back();
    shared_.pop_back();
    shared_size_.store(shared_.size(), std::memory_order_relaxed);
    return object;
  }

  // Moves `object` into the shared list if there is room.
  bool push_shared(std::unique_ptr<T>& object) {
    if (shared_capacity_ == 0) return false;
    std::lock_guard lock(mu_);
    if (shared_.size() >= shared_capacity_) return false;
    shared_.push_back(object.release());  // within the reserved capacity
    shared_size_.store(shared_.size(), std::memory_order_relaxed);
    return true;
  }

  // Runs on an exiting thread, under the registry mutex: moves the objects
  // kept in its slot to the shared list, as many as fit.
  static void take_back_thread_objects(detail::PoolNode* node, std::uint32_t index) noexcept {
    Pool* pool = static_cast<Pool*>(node);
    Slot* slot = pool->slot(index);
    if (slot == nullptr || slot->count == 0) return;
    std::lock_guard lock(pool->mu_);
    while (slot->count > 0 && pool->shared_.size() < pool->shared_capacity_) {
      pool->shared_.push_back(objects(slot)[--slot->count]);
    }
    pool->shared_size_.store(pool->shared_.size(), std::memory_order_relaxed);
  }

  const std::size_t per_thread_;
  const std::size_t shared_capacity_;
  const std::size_t stride_;  // bytes per slot
  std::function<std::unique_ptr<T>()> make_;
  const std::function<void(T&)> reset_;

  // Chunk i holds the slots of indices [32 i, 32 i + 32); set once.
  std::atomic<std::byte*> chunks_[detail::kPoolMaxThreads / detail::kPoolChunkSlots] = {};

  std::mutex mu_;  // guards shared_
  std::vector<T*> shared_;
  std::atomic<std::size_t> shared_size_{0};

  // Counts of calls made without a slot.
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> puts_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace cpprof

// Every replaceable operator new and delete, interposed (see alloc_hooks.h):
// they allocate through the counted malloc bodies, keep C++'s contract (the
// new-handler loop, std::bad_alloc, nullptr from the nothrow forms) and
// leave libstdc++'s versions, which would call malloc again, unused.
// Built with exceptions (the throwing forms throw, the nothrow forms catch
// what a new-handler throws). Compiled out in the sanitizer build.
#include "capture/alloc_hooks.h"

#if !defined(CPPROF_SANITIZE)

#include <cstddef>
#include <cstdlib>
#include <new>

#include "capture/alloc_forward.h"

#define CPPROF_NEW_HOOK [[gnu::visibility("default"), gnu::section("cpprof_alloc_hooks")]]

namespace cpprof::capture {
namespace {

// One block for new: from the allocator below through cpprof's counting
// (the inline fast path), or, when the program defines malloc itself, from
// the program's malloc (new and malloc must keep going to the same place).
[[gnu::always_inline]] inline void* new_block(size_t size, size_t alignment) {
  if (__builtin_expect(!g_global_malloc_is_ours.load(std::memory_order_relaxed), 0)) {
    if (alignment == 0) return ::malloc(size);
    void* ptr = nullptr;
    return ::posix_memalign(&ptr, alignment, size) == 0 ? ptr : nullptr;
  }
  return alignment == 0 ? forward_malloc(size) : forward_aligned(alignment, size);
}

// The new-handler loop after a first failure: nullptr only when there is
// no handler (the caller throws or returns it) or the handler threw
// std::bad_alloc (`nothrow`).
template <bool kNothrow>
[[gnu::section("cpprof_alloc_hooks"), gnu::noinline]] void* retry(size_t size, size_t alignment) {
  for (;;) {
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) return nullptr;
    if constexpr (kNothrow) {
      try {
        handler();
      } catch (const std::bad_alloc&) {
        return nullptr;
      }
    } else {
      handler();
    }
    void* ptr = new_block(size, alignment);
    if (ptr != nullptr) return ptr;
  }
}

template <bool kNothrow>
[[gnu::section("cpprof_alloc_hooks"), gnu::always_inline]] inline void* allocate(size_t size,
                                                                                 size_t alignment) {
  size += size == 0;  // a unique address, as libstdc++ gives
  void* ptr = new_block(size, alignment);
  if (__builtin_expect(ptr != nullptr, 1)) return ptr;
  return retry<kNothrow>(size, alignment);
}

[[gnu::section("cpprof_alloc_hooks"), gnu::always_inline]] inline void* allocate_or_throw(
    size_t size, size_t alignment) {
  void* ptr = allocate<false>(size, alignment);
  if (__builtin_expect(ptr == nullptr, 0)) throw std::bad_alloc();
  return ptr;
}

size_t alignment_of(std::align_val_t alignment) { return static_cast<size_t>(alignment); }

[[gnu::always_inline]] inline void release(void* ptr) {
  if (__builtin_expect(g_forward_free.load(std::memory_order_relaxed), 0)) return ::free(ptr);
  forward_free(ptr);
}

}  // namespace
}  // namespace cpprof::capture

using cpprof::capture::alignment_of;
using cpprof::capture::allocate;
using cpprof::capture::allocate_or_throw;
using cpprof::capture::release;

CPPROF_NEW_HOOK void* operator new(size_t size) { return allocate_or_throw(size, 0); }
CPPROF_NEW_HOOK void* operator new[](size_t size) { return allocate_or_throw(size, 0); }
CPPROF_NEW_HOOK void* operator new(size_t size, const std::nothrow_t&) noexcept {
  return allocate<true>(size, 0);
}
CPPROF_NEW_HOOK void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  return allocate<true>(size, 0);
}
CPPROF_NEW_HOOK void* operator new(size_t size, std::align_val_t alignment) {
  return allocate_or_throw(size, alignment_of(alignment));
}
CPPROF_NEW_HOOK void* operator new[](size_t size, std::align_val_t alignment) {
  return allocate_or_throw(size, alignment_of(alignment));
}
CPPROF_NEW_HOOK void* operator new(size_t size, std::align_val_t alignment,
                                   const std::nothrow_t&) noexcept {
  return allocate<true>(size, alignment_of(alignment));
}
CPPROF_NEW_HOOK void* operator new[](size_t size, std::align_val_t alignment,
                                     const std::nothrow_t&) noexcept {
  return allocate<true>(size, alignment_of(alignment));
}

CPPROF_NEW_HOOK void operator delete(void* ptr) noexcept { release(ptr); }
CPPROF_NEW_HOOK void operator delete[](void* ptr) noexcept { release(ptr); }
CPPROF_NEW_HOOK void operator delete(void* ptr, size_t) noexcept { release(ptr); }
CPPROF_NEW_HOOK void operator delete[](void* ptr, size_t) noexcept { release(ptr); }
CPPROF_NEW_HOOK void operator delete(void* ptr, const std::nothrow_t&) noexcept { release(ptr); }
CPPROF_NEW_HOOK void operator delete[](void* ptr, const std::nothrow_t&) noexcept { release(ptr); }
CPPROF_NEW_HOOK void operator delete(void* ptr, std::align_val_t) noexcept { release(ptr); }
CPPROF_NEW_HOOK void operator delete[](void* ptr, std::align_val_t) noexcept { release(ptr); }
CPPROF_NEW_HOOK void operator delete(void* ptr, size_t, std::align_val_t) noexcept { release(ptr); }
CPPROF_NEW_HOOK void operator delete[](void* ptr, size_t, std::align_val_t) noexcept {
  release(ptr);
}
CPPROF_NEW_HOOK void operator delete(void* ptr, std::align_val_t, const std::nothrow_t&) noexcept {
  release(ptr);
}
CPPROF_NEW_HOOK void operator delete[](void* ptr, std::align_val_t,
                                       const std::nothrow_t&) noexcept {
  release(ptr);
}

#endif  // !CPPROF_SANITIZE

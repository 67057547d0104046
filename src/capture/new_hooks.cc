// Every replaceable operator new and delete, interposed (see alloc_hooks.h):
// they allocate through the counted malloc bodies, keep C++'s contract (the
// new-handler loop, std::bad_alloc, nullptr from the nothrow forms) and
// leave libstdc++'s versions, which would call malloc again, unused.
// Built with exceptions (the throwing forms throw, the nothrow forms catch
// what a new-handler throws). Compiled out in the sanitizer build.
#include "capture/alloc_hooks.h"

#if !defined(CPPROF_SANITIZE)

#include <cstddef>
#include <new>

#define CPPROF_NEW_HOOK [[gnu::visibility("default"), gnu::section("cpprof_alloc_hooks")]]

namespace cpprof::capture {
namespace {

// The new-handler loop: nullptr only when there is no handler (the caller
// throws or returns it) or the handler threw std::bad_alloc (`nothrow`).
template <bool kNothrow>
[[gnu::section("cpprof_alloc_hooks")]] void* allocate(size_t size, size_t alignment) {
  if (size == 0) size = 1;  // a unique address, as libstdc++ gives
  for (;;) {
    void* ptr = alignment == 0 ? counted_malloc(size) : counted_aligned_alloc(alignment, size);
    if (__builtin_expect(ptr != nullptr, 1)) return ptr;
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
  }
}

[[gnu::section("cpprof_alloc_hooks")]] void* allocate_or_throw(size_t size, size_t alignment) {
  void* ptr = allocate<false>(size, alignment);
  if (ptr == nullptr) throw std::bad_alloc();
  return ptr;
}

size_t alignment_of(std::align_val_t alignment) { return static_cast<size_t>(alignment); }

}  // namespace
}  // namespace cpprof::capture

using cpprof::capture::alignment_of;
using cpprof::capture::allocate;
using cpprof::capture::allocate_or_throw;
using cpprof::capture::counted_free;

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

CPPROF_NEW_HOOK void operator delete(void* ptr) noexcept { counted_free(ptr); }
CPPROF_NEW_HOOK void operator delete[](void* ptr) noexcept { counted_free(ptr); }
CPPROF_NEW_HOOK void operator delete(void* ptr, size_t) noexcept { counted_free(ptr); }
CPPROF_NEW_HOOK void operator delete[](void* ptr, size_t) noexcept { counted_free(ptr); }
CPPROF_NEW_HOOK void operator delete(void* ptr, const std::nothrow_t&) noexcept {
  counted_free(ptr);
}
CPPROF_NEW_HOOK void operator delete[](void* ptr, const std::nothrow_t&) noexcept {
  counted_free(ptr);
}
CPPROF_NEW_HOOK void operator delete(void* ptr, std::align_val_t) noexcept { counted_free(ptr); }
CPPROF_NEW_HOOK void operator delete[](void* ptr, std::align_val_t) noexcept { counted_free(ptr); }
CPPROF_NEW_HOOK void operator delete(void* ptr, size_t, std::align_val_t) noexcept {
  counted_free(ptr);
}
CPPROF_NEW_HOOK void operator delete[](void* ptr, size_t, std::align_val_t) noexcept {
  counted_free(ptr);
}
CPPROF_NEW_HOOK void operator delete(void* ptr, std::align_val_t, const std::nothrow_t&) noexcept {
  counted_free(ptr);
}
CPPROF_NEW_HOOK void operator delete[](void* ptr, std::align_val_t,
                                       const std::nothrow_t&) noexcept {
  counted_free(ptr);
}

#endif  // !CPPROF_SANITIZE

// The C allocation functions, interposed (see alloc_hooks.h): each counts,
// may take a heap sample, and forwards to the allocator below. The common
// paths of malloc and free are inline in alloc_forward.h. Compiled out in
// the sanitizer build, whose runtime owns malloc (sanitizer_alloc_hooks.cc).
#include "capture/alloc_hooks.h"

#if !defined(CPPROF_SANITIZE)

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>

#include "capture/alloc_forward.h"
#include "capture/heap_sampler.h"
#include "capture/sampled_region.h"

// Every function an allocation passes through lives in this section.
#define CPPROF_IN_HOOKS [[gnu::section("cpprof_alloc_hooks")]]
#define CPPROF_ALLOC_HOOK \
  extern "C" [[gnu::visibility("default"), gnu::section("cpprof_alloc_hooks")]]

namespace cpprof::capture {
namespace {

// A heap sample, if one is due for `size` bytes; else nullptr.
CPPROF_IN_HOOKS inline void* maybe_sample(size_t size, size_t alignment) {
  if (__builtin_expect(heap_sample_due(size), 0)) return sample_allocation(size, alignment);
  return nullptr;
}

std::atomic<size_t> g_page_size{0};

size_t page_size() {
  size_t page = g_page_size.load(std::memory_order_relaxed);
  if (page == 0) {
    page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    g_page_size.store(page, std::memory_order_relaxed);
  }
  return page;
}

// Emulations, for allocators without the function, from posix_memalign:
// `size` bytes are allocated, `requested` counted (pvalloc rounds up).
CPPROF_IN_HOOKS void* aligned_or_errno(size_t alignment, size_t size, size_t requested) {
  size_t power = sizeof(void*);
  while (power < alignment) power *= 2;  // memalign rounds up; posix_memalign would refuse
  void* ptr = nullptr;
  if (!alloc_ready()) {
    ptr = bootstrap_alloc(power, size);
  } else if (requested == size) {
    ptr = forward_aligned(power, size);
  } else if (g_real.posix_memalign(&ptr, power, size) == 0) {
    count_alloc(requested);  // pvalloc's rounded objects are not sampled
  } else {
    ptr = nullptr;
  }
  if (ptr == nullptr) errno = ENOMEM;
  return ptr;
}

CPPROF_IN_HOOKS void* realloc_impl(void* ptr, size_t size) {
  if (ptr != nullptr && (in_sampled_region(ptr) || in_arena(ptr))) {
    // Ours: move it to a fresh block (sampled or not).
    const size_t old = in_arena(ptr) ? arena_size_of(ptr) : sampled_usable_size(ptr);
    void* fresh = nullptr;
    if (size != 0) {
      fresh = forward_malloc(size);
      if (fresh == nullptr) return nullptr;  // the old block stays
      copy_bytes(fresh, ptr, old < size ? old : size);
    }
    forward_free(ptr);
    return fresh;
  }
  // Any other non-null pointer came from g_real: the lookup has finished.
  if (!alloc_ready()) return size == 0 ? nullptr : bootstrap_alloc(16, size);
  if (size != 0 && (ptr == nullptr || g_real.usable_size != nullptr)) {
    if (void* sampled = maybe_sample(size, 16)) {
      if (ptr != nullptr) {
        const size_t old = g_real.usable_size(ptr);
        copy_bytes(sampled, ptr, old < size ? old : size);
        forward_free(ptr);
      }
      return sampled;
    }
  }
  void* result = g_real.realloc(ptr, size);
  if (ptr != nullptr && (result != nullptr || size == 0)) count_free();
  if (result != nullptr) count_alloc(size);
  return result;
}

}  // namespace

CPPROF_IN_HOOKS void* forward_malloc_slow(size_t size) {
  if (!alloc_ready()) return bootstrap_alloc(16, size);
  AllocCounterBlock* block = t_alloc_block;
  if (reinterpret_cast<uintptr_t>(block) > kExitedBlock) {
    // A sample is due (or the lookup finished since the fast path looked).
    if (heap_sample_due(size)) {
      if (void* sampled = sample_allocation(size, 16)) return sampled;
    }
  } else if (void* sampled = maybe_sample(size, 16)) {  // takes a block on a first allocation
    return sampled;
  }
  void* ptr = g_real.malloc(size);
  if (ptr != nullptr) count_alloc(size);
  return ptr;
}

CPPROF_IN_HOOKS void forward_free_slow(void* ptr) {
  if (in_sampled_region(ptr)) return free_sampled(ptr);
  count_free();
  if (in_arena(ptr)) return;
  g_real.free(ptr);
}

CPPROF_IN_HOOKS void* forward_aligned(size_t alignment, size_t size) {
  if (!alloc_ready()) return bootstrap_alloc(alignment, size);
  if (void* sampled = maybe_sample(size, alignment)) return sampled;
  void* ptr = nullptr;
  if (g_real.posix_memalign(&ptr, alignment < sizeof(void*) ? sizeof(void*) : alignment, size) !=
      0) {
    return nullptr;
  }
  count_alloc(size);
  return ptr;
}

}  // namespace cpprof::capture

using cpprof::capture::alloc_ready;
using cpprof::capture::count_alloc;
using cpprof::capture::g_real;

CPPROF_ALLOC_HOOK void* malloc(size_t size) noexcept {
  return cpprof::capture::forward_malloc(size);
}

CPPROF_ALLOC_HOOK void free(void* ptr) noexcept { cpprof::capture::forward_free(ptr); }

CPPROF_ALLOC_HOOK void* calloc(size_t count, size_t size) noexcept {
  size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (!alloc_ready()) return cpprof::capture::bootstrap_alloc(16, bytes);  // zeroed
  if (void* sampled = cpprof::capture::maybe_sample(bytes, 16)) {
    // Fresh or given-back pages are zero already; reused slots are not
    // (sampled_region.cc).
    if (cpprof::capture::sampled_needs_zeroing(sampled)) {
      auto* out = static_cast<unsigned char*>(sampled);
      for (size_t i = 0; i < bytes; ++i) out[i] = 0;
    }
    return sampled;
  }
  void* ptr = g_real.calloc(count, size);
  if (ptr != nullptr) count_alloc(bytes);
  return ptr;
}

CPPROF_ALLOC_HOOK void* realloc(void* ptr, size_t size) noexcept {
  return cpprof::capture::realloc_impl(ptr, size);
}

CPPROF_ALLOC_HOOK void* reallocarray(void* ptr, size_t count, size_t size) noexcept {
  size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return cpprof::capture::realloc_impl(ptr, bytes);
}

CPPROF_ALLOC_HOOK int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  void* ptr = cpprof::capture::forward_aligned(alignment, size);
  if (ptr == nullptr) return ENOMEM;
  *out = ptr;
  return 0;
}

CPPROF_ALLOC_HOOK void* memalign(size_t alignment, size_t size) noexcept {
  if (alloc_ready() && g_real.memalign != nullptr) {
    if ((alignment & (alignment - 1)) == 0) {
      if (void* sampled = cpprof::capture::maybe_sample(size, alignment)) return sampled;
    }
    void* ptr = g_real.memalign(alignment, size);
    if (ptr != nullptr) count_alloc(size);
    return ptr;
  }
  return cpprof::capture::aligned_or_errno(alignment, size, size);
}

CPPROF_ALLOC_HOOK void* aligned_alloc(size_t alignment, size_t size) noexcept {
  if (alloc_ready() && g_real.aligned_alloc != nullptr) {
    if (alignment != 0 && (alignment & (alignment - 1)) == 0) {
      if (void* sampled = cpprof::capture::maybe_sample(size, alignment)) return sampled;
    }
    void* ptr = g_real.aligned_alloc(alignment, size);
    if (ptr != nullptr) count_alloc(size);
    return ptr;
  }
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    errno = EINVAL;
    return nullptr;
  }
  return cpprof::capture::aligned_or_errno(alignment, size, size);
}

CPPROF_ALLOC_HOOK void* valloc(size_t size) noexcept {
  if (alloc_ready() && g_real.valloc != nullptr) {
    if (void* sampled = cpprof::capture::maybe_sample(size, cpprof::capture::page_size())) {
      return sampled;
    }
    void* ptr = g_real.valloc(size);
    if (ptr != nullptr) count_alloc(size);
    return ptr;
  }
  return cpprof::capture::aligned_or_errno(cpprof::capture::page_size(), size, size);
}

CPPROF_ALLOC_HOOK void* pvalloc(size_t size) noexcept {
  if (alloc_ready() && g_real.pvalloc != nullptr) {
    void* ptr = g_real.pvalloc(size);
    if (ptr != nullptr) count_alloc(size);
    return ptr;
  }
  const size_t page = cpprof::capture::page_size();
  size_t rounded = 0;
  if (__builtin_add_overflow(size, page - 1, &rounded)) {
    errno = ENOMEM;
    return nullptr;
  }
  rounded &= ~(page - 1);
  return cpprof::capture::aligned_or_errno(page, rounded == 0 ? page : rounded, size);
}

CPPROF_ALLOC_HOOK size_t malloc_usable_size(void* ptr) noexcept {
  if (ptr == nullptr) return 0;
  if (cpprof::capture::in_sampled_region(ptr)) return cpprof::capture::sampled_usable_size(ptr);
  if (cpprof::capture::in_arena(ptr)) return cpprof::capture::arena_size_of(ptr);
  if (!alloc_ready() || g_real.usable_size == nullptr) return 0;
  return g_real.usable_size(ptr);
}

#endif  // !CPPROF_SANITIZE

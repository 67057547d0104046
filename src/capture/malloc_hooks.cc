// The C allocation functions, interposed (see alloc_hooks.h). Compiled out
// in the sanitizer build, whose runtime owns malloc (sanitizer_alloc_hooks.cc).
#include "capture/alloc_hooks.h"

#if !defined(CPPROF_SANITIZE)

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>

#include "capture/alloc_counters.h"

// Bounds of the hooks' code, set by the linker (alloc_hooks.h: in_alloc_hooks).
extern "C" [[gnu::visibility("hidden")]] const char __start_cpprof_alloc_hooks[];
extern "C" [[gnu::visibility("hidden")]] const char __stop_cpprof_alloc_hooks[];

// Every function an allocation passes through lives in this section.
#define CPPROF_IN_HOOKS [[gnu::section("cpprof_alloc_hooks")]]
#define CPPROF_ALLOC_HOOK \
  extern "C" [[gnu::visibility("default"), gnu::section("cpprof_alloc_hooks")]]

namespace cpprof::capture {
namespace {

// The allocator below. Written once by resolve(), before g_state says ready.
struct Real {
  void* (*malloc)(size_t) = nullptr;
  void (*free)(void*) = nullptr;
  void* (*calloc)(size_t, size_t) = nullptr;
  void* (*realloc)(void*, size_t) = nullptr;
  int (*posix_memalign)(void**, size_t, size_t) = nullptr;
  size_t (*usable_size)(void*) = nullptr;
  // Optional: only if the object that defines malloc has them.
  void* (*reallocarray)(void*, size_t, size_t) = nullptr;
  void* (*memalign)(size_t, size_t) = nullptr;
  void* (*aligned_alloc)(size_t, size_t) = nullptr;
  void* (*valloc)(size_t) = nullptr;
  void* (*pvalloc)(size_t) = nullptr;
};
constinit Real g_real;
const char* g_real_file = "";

enum State : int { kUnresolved = 0, kResolving = 1, kReady = 2 };
std::atomic<int> g_state{kUnresolved};
// Whether the process's malloc is this one; if not, new and delete follow
// the process's malloc and free (alloc_hooks.h). Relaxed: set once, before
// g_state says ready.
std::atomic<bool> g_global_malloc_is_ours{true};
// Whether delete may call the process's free: not if that is this one
// (a program that defines malloc but not free), which would recurse.
std::atomic<bool> g_forward_free{false};

// The bootstrap arena, for allocations made while resolve() runs.
constexpr size_t kArenaSize = size_t{256} << 10;
constexpr size_t kArenaHeader = 16;  // holds the block's size
alignas(4096) constinit char g_arena[kArenaSize];
std::atomic<size_t> g_arena_used{0};

bool in_arena(const void* ptr) {
  return reinterpret_cast<uintptr_t>(ptr) - reinterpret_cast<uintptr_t>(g_arena) < kArenaSize;
}

size_t arena_size_of(const void* ptr) {
  return *reinterpret_cast<const size_t*>(static_cast<const char*>(ptr) - kArenaHeader);
}

// Never reused, so always zero-filled (calloc may use it as is).
void* arena_alloc(size_t alignment, size_t size) {
  if (alignment < kArenaHeader) alignment = kArenaHeader;
  size_t used = g_arena_used.load(std::memory_order_relaxed);
  for (;;) {
    size_t start = (used + kArenaHeader + alignment - 1) & ~(alignment - 1);
    if (start > kArenaSize || size > kArenaSize - start) return nullptr;
    if (g_arena_used.compare_exchange_weak(used, start + size, std::memory_order_relaxed)) {
      *reinterpret_cast<size_t*>(g_arena + start - kArenaHeader) = size;
      return g_arena + start;
    }
  }
}

void copy_bytes(void* to, const void* from, size_t n) {
  auto* d = static_cast<char*>(to);
  const auto* s = static_cast<const char*>(from);
  for (size_t i = 0; i < n; ++i) d[i] = s[i];
}

bool same_object(void* symbol, const void* base) {
  Dl_info info;
  return symbol != nullptr && dladdr(symbol, &info) != 0 && info.dli_fbase == base;
}

template <class Fn>
Fn next(const char* name, const void* base) {
  void* symbol = dlsym(RTLD_NEXT, name);
  return same_object(symbol, base) ? reinterpret_cast<Fn>(symbol) : nullptr;
}

extern "C" void* __libc_malloc(size_t);
extern "C" void __libc_free(void*);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_realloc(void*, size_t);
extern "C" void* __libc_memalign(size_t, size_t);

int libc_posix_memalign(void** out, size_t alignment, size_t size) {
  void* ptr = __libc_memalign(alignment, size);
  if (ptr == nullptr) return ENOMEM;
  *out = ptr;
  return 0;
}

// Finds the allocator below. The first caller does it; allocations made
// meanwhile, by it (the loader) or others, come from the arena.
void resolve() {
  int expected = kUnresolved;
  if (!g_state.compare_exchange_strong(expected, kResolving, std::memory_order_acq_rel)) return;
  Real real;
  void* next_malloc = dlsym(RTLD_NEXT, "malloc");
  Dl_info info;
  if (next_malloc != nullptr && dladdr(next_malloc, &info) != 0) {
    const void* base = info.dli_fbase;
    g_real_file = info.dli_fname != nullptr ? info.dli_fname : "";
    real.malloc = reinterpret_cast<void* (*)(size_t)>(next_malloc);
    real.free = next<void (*)(void*)>("free", base);
    real.calloc = next<void* (*)(size_t, size_t)>("calloc", base);
    real.realloc = next<void* (*)(void*, size_t)>("realloc", base);
    real.posix_memalign = next<int (*)(void**, size_t, size_t)>("posix_memalign", base);
    real.usable_size = next<size_t (*)(void*)>("malloc_usable_size", base);
    real.reallocarray = next<void* (*)(void*, size_t, size_t)>("reallocarray", base);
    real.memalign = next<void* (*)(size_t, size_t)>("memalign", base);
    real.aligned_alloc = next<void* (*)(size_t, size_t)>("aligned_alloc", base);
    real.valloc = next<void* (*)(size_t)>("valloc", base);
    real.pvalloc = next<void* (*)(size_t)>("pvalloc", base);
  }
  if (real.malloc == nullptr || real.free == nullptr || real.calloc == nullptr ||
      real.realloc == nullptr || real.posix_memalign == nullptr) {
    // Not a complete allocator below us: glibc's own entry points.
    real = Real{};
    g_real_file = "libc.so.6";
    real.malloc = __libc_malloc;
    real.free = __libc_free;
    real.calloc = __libc_calloc;
    real.realloc = __libc_realloc;
    real.memalign = __libc_memalign;
    real.posix_memalign = libc_posix_memalign;
    real.usable_size = reinterpret_cast<size_t (*)(void*)>(dlsym(RTLD_NEXT, "malloc_usable_size"));
  }
  g_real = real;
  // Where a call to malloc from this object lands: here, or in a malloc
  // the program defines itself (which wins the lookup over us).
  void* (*volatile process_malloc)(size_t) = &::malloc;
  void (*volatile process_free)(void*) = &::free;
  const bool malloc_is_ours = in_alloc_hooks(reinterpret_cast<uintptr_t>(process_malloc));
  g_global_malloc_is_ours.store(malloc_is_ours, std::memory_order_relaxed);
  g_forward_free.store(
      !malloc_is_ours && !in_alloc_hooks(reinterpret_cast<uintptr_t>(process_free)),
      std::memory_order_relaxed);
  g_state.store(kReady, std::memory_order_release);
}

[[gnu::constructor(101)]] void resolve_at_load() { resolve(); }

// Waits out a resolve() under way in another thread; false if the caller
// must use the arena (it is the resolving thread, or the wait is long).
bool ready() {
  int state = g_state.load(std::memory_order_acquire);
  if (state == kReady) return true;
  if (state == kUnresolved) {
    resolve();
    state = g_state.load(std::memory_order_acquire);
  }
  return state == kReady;
}

// An allocation from the arena, counted; nullptr (ENOMEM) when it is full.
CPPROF_IN_HOOKS void* bootstrap_alloc(size_t alignment, size_t size) {
  void* ptr = alignment <= 4096 ? arena_alloc(alignment, size) : nullptr;
  if (ptr == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  count_alloc(size);
  return ptr;
}

CPPROF_IN_HOOKS [[gnu::noinline]] void* slow_malloc(size_t size) {
  if (ready()) return counted_malloc(size);
  return bootstrap_alloc(16, size);
}

CPPROF_IN_HOOKS [[gnu::noinline]] void* slow_aligned(size_t alignment, size_t size) {
  if (ready()) return counted_aligned_alloc(alignment, size);
  return bootstrap_alloc(alignment, size);
}

// Emulations, for allocators without the function, from posix_memalign:
// `size` bytes are allocated, `requested` counted (pvalloc rounds up).
CPPROF_IN_HOOKS void* aligned_or_errno(size_t alignment, size_t size, size_t requested) {
  size_t power = sizeof(void*);
  while (power < alignment) power *= 2;  // memalign rounds up; posix_memalign would refuse
  void* ptr = nullptr;
  if (ready() && g_global_malloc_is_ours.load(std::memory_order_relaxed)) {
    if (g_real.posix_memalign(&ptr, power, size) == 0) {
      count_alloc(requested);
    } else {
      ptr = nullptr;
    }
  } else {
    ptr = counted_aligned_alloc(power, size);
  }
  if (ptr == nullptr) errno = ENOMEM;
  return ptr;
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

CPPROF_IN_HOOKS void* realloc_impl(void* ptr, size_t size, void* (*forward)(void*, size_t)) {
  if (ptr != nullptr && in_arena(ptr)) {
    count_free();
    if (size == 0) return nullptr;
    void* fresh = counted_malloc(size);
    if (fresh != nullptr) {
      size_t old = arena_size_of(ptr);
      copy_bytes(fresh, ptr, old < size ? old : size);
    }
    return fresh;
  }
  // Any other non-null pointer came from g_real: resolve() has finished.
  if (!ready()) return size == 0 ? nullptr : bootstrap_alloc(16, size);
  void* result = forward(ptr, size);
  if (ptr != nullptr && (result != nullptr || size == 0)) count_free();
  if (result != nullptr) count_alloc(size);
  return result;
}

CPPROF_IN_HOOKS void* realloc_forward(void* ptr, size_t size) { return g_real.realloc(ptr, size); }

}  // namespace

CPPROF_IN_HOOKS void* counted_malloc(size_t size) {
  if (__builtin_expect(!g_global_malloc_is_ours.load(std::memory_order_relaxed), 0)) {
    return ::malloc(size);
  }
  if (__builtin_expect(g_state.load(std::memory_order_acquire) != kReady, 0)) {
    return slow_malloc(size);
  }
  void* ptr = g_real.malloc(size);
  if (__builtin_expect(ptr != nullptr, 1)) count_alloc(size);
  return ptr;
}

CPPROF_IN_HOOKS void* counted_aligned_alloc(size_t alignment, size_t size) {
  if (__builtin_expect(!g_global_malloc_is_ours.load(std::memory_order_relaxed), 0)) {
    void* ptr = nullptr;
    return ::posix_memalign(&ptr, alignment, size) == 0 ? ptr : nullptr;
  }
  if (__builtin_expect(g_state.load(std::memory_order_acquire) != kReady, 0)) {
    return slow_aligned(alignment, size);
  }
  void* ptr = nullptr;
  if (g_real.posix_memalign(&ptr, alignment < sizeof(void*) ? sizeof(void*) : alignment, size) !=
      0) {
    return nullptr;
  }
  count_alloc(size);
  return ptr;
}

CPPROF_IN_HOOKS void counted_free(void* ptr) {
  if (ptr == nullptr) return;
  if (__builtin_expect(g_forward_free.load(std::memory_order_relaxed), 0)) return ::free(ptr);
  count_free();
  if (__builtin_expect(in_arena(ptr), 0)) return;
  // Not from the arena, so from g_real: resolve() has finished.
  g_real.free(ptr);
}

bool in_alloc_hooks(uintptr_t pc) {
  return pc >= reinterpret_cast<uintptr_t>(__start_cpprof_alloc_hooks) &&
         pc < reinterpret_cast<uintptr_t>(__stop_cpprof_alloc_hooks);
}

const char* underlying_allocator() { return g_real_file; }
bool alloc_hooks_compiled_in() { return true; }
bool install_sanitizer_alloc_hooks() { return false; }

}  // namespace cpprof::capture

using cpprof::capture::count_alloc;
using cpprof::capture::count_free;
using cpprof::capture::counted_aligned_alloc;
using cpprof::capture::counted_free;
using cpprof::capture::counted_malloc;
using cpprof::capture::g_real;

CPPROF_ALLOC_HOOK void* malloc(size_t size) noexcept { return counted_malloc(size); }

CPPROF_ALLOC_HOOK void free(void* ptr) noexcept { counted_free(ptr); }

CPPROF_ALLOC_HOOK void* calloc(size_t count, size_t size) noexcept {
  size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (!cpprof::capture::ready()) return cpprof::capture::bootstrap_alloc(16, bytes);  // zeroed
  void* ptr = g_real.calloc(count, size);
  if (ptr != nullptr) count_alloc(bytes);
  return ptr;
}

CPPROF_ALLOC_HOOK void* realloc(void* ptr, size_t size) noexcept {
  return cpprof::capture::realloc_impl(ptr, size, cpprof::capture::realloc_forward);
}

CPPROF_ALLOC_HOOK void* reallocarray(void* ptr, size_t count, size_t size) noexcept {
  size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return cpprof::capture::realloc_impl(ptr, bytes, cpprof::capture::realloc_forward);
}

CPPROF_ALLOC_HOOK int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  if (!cpprof::capture::ready()) {
    void* ptr = cpprof::capture::bootstrap_alloc(alignment, size);
    if (ptr == nullptr) return ENOMEM;
    *out = ptr;
    return 0;
  }
  int rc = g_real.posix_memalign(out, alignment, size);
  if (rc == 0) count_alloc(size);
  return rc;
}

CPPROF_ALLOC_HOOK void* memalign(size_t alignment, size_t size) noexcept {
  if (cpprof::capture::ready() && g_real.memalign != nullptr) {
    void* ptr = g_real.memalign(alignment, size);
    if (ptr != nullptr) count_alloc(size);
    return ptr;
  }
  return cpprof::capture::aligned_or_errno(alignment, size, size);
}

CPPROF_ALLOC_HOOK void* aligned_alloc(size_t alignment, size_t size) noexcept {
  if (cpprof::capture::ready() && g_real.aligned_alloc != nullptr) {
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
  if (cpprof::capture::ready() && g_real.valloc != nullptr) {
    void* ptr = g_real.valloc(size);
    if (ptr != nullptr) count_alloc(size);
    return ptr;
  }
  return cpprof::capture::aligned_or_errno(cpprof::capture::page_size(), size, size);
}

CPPROF_ALLOC_HOOK void* pvalloc(size_t size) noexcept {
  if (cpprof::capture::ready() && g_real.pvalloc != nullptr) {
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
  if (cpprof::capture::in_arena(ptr)) return cpprof::capture::arena_size_of(ptr);
  if (!cpprof::capture::ready() || g_real.usable_size == nullptr) return 0;
  return g_real.usable_size(ptr);
}

#endif  // !CPPROF_SANITIZE

// Finding the allocator below cpprof's hooks, and the bootstrap arena that
// serves allocations while that runs (see alloc_hooks.h, alloc_forward.h).
// Compiled out in the sanitizer build.
#include "capture/alloc_hooks.h"

#if !defined(CPPROF_SANITIZE)

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>

#include "capture/alloc_forward.h"
#include "capture/thread_hooks.h"

// Bounds of the hooks' code, set by the linker (alloc_hooks.h: in_alloc_hooks).
extern "C" [[gnu::visibility("hidden")]] const char __start_cpprof_alloc_hooks[];
extern "C" [[gnu::visibility("hidden")]] const char __stop_cpprof_alloc_hooks[];

extern "C" void* __libc_malloc(size_t);
extern "C" void __libc_free(void*);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_realloc(void*, size_t);
extern "C" void* __libc_memalign(size_t, size_t);

namespace cpprof::capture {

constinit RealAllocator g_real;
std::atomic<int> g_alloc_state{0};
std::atomic<bool> g_global_malloc_is_ours{true};
std::atomic<bool> g_forward_free{false};
alignas(4096) constinit char g_arena[kArenaSize];

namespace {

enum State : int { kUnresolved = 0, kResolving = 1 };

const char* g_real_file = "";
constexpr size_t kArenaHeader = 16;  // holds the block's size
std::atomic<size_t> g_arena_used{0};

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

bool same_object(void* symbol, const void* base) {
  Dl_info info;
  return symbol != nullptr && dladdr(symbol, &info) != 0 && info.dli_fbase == base;
}

template <class Fn>
Fn next(const char* name, const void* base) {
  void* symbol = dlsym(RTLD_NEXT, name);
  return same_object(symbol, base) ? reinterpret_cast<Fn>(symbol) : nullptr;
}

int libc_posix_memalign(void** out, size_t alignment, size_t size) {
  void* ptr = __libc_memalign(alignment, size);
  if (ptr == nullptr) return ENOMEM;
  *out = ptr;
  return 0;
}

// Finds the allocator below: the next malloc in the loader's search order
// and every other function from the same object. The first caller does it;
// allocations made meanwhile, by it (the loader) or others, use the arena.
void resolve() {
  int expected = kUnresolved;
  if (!g_alloc_state.compare_exchange_strong(expected, kResolving, std::memory_order_acq_rel)) {
    return;
  }
  RealAllocator real;
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
    real = RealAllocator{};
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
  g_alloc_state.store(kAllocReady, std::memory_order_release);
}

[[gnu::constructor(101)]] void resolve_at_load() { resolve(); }

// Linked statically, a program that only counts allocations would not pull
// in the pthread_create interposer, and its threads would go unregistered:
// no stack bounds for the sampler, counter blocks never given back.
[[gnu::used]] void* const g_keep_thread_hooks = reinterpret_cast<void*>(&register_current_thread);

}  // namespace

bool alloc_ready() {
  int state = g_alloc_state.load(std::memory_order_acquire);
  if (state == kAllocReady) return true;
  if (state == kUnresolved) {
    resolve();
    state = g_alloc_state.load(std::memory_order_acquire);
  }
  return state == kAllocReady;
}

size_t arena_size_of(const void* ptr) {
  return *reinterpret_cast<const size_t*>(static_cast<const char*>(ptr) - kArenaHeader);
}

[[gnu::section("cpprof_alloc_hooks")]] void* bootstrap_alloc(size_t alignment, size_t size) {
  void* ptr = alignment <= 4096 ? arena_alloc(alignment, size) : nullptr;
  if (ptr == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  count_alloc(size);
  return ptr;
}

void copy_bytes(void* to, const void* from, size_t n) {
  auto* d = static_cast<char*>(to);
  const auto* s = static_cast<const char*>(from);
  for (size_t i = 0; i < n; ++i) d[i] = s[i];
}

bool in_alloc_hooks(uintptr_t pc) {
  return pc >= reinterpret_cast<uintptr_t>(__start_cpprof_alloc_hooks) &&
         pc < reinterpret_cast<uintptr_t>(__stop_cpprof_alloc_hooks);
}

const char* underlying_allocator() { return g_real_file; }
bool alloc_hooks_compiled_in() { return true; }
bool install_sanitizer_alloc_hooks() { return false; }

}  // namespace cpprof::capture

#endif  // !CPPROF_SANITIZE

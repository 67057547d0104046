// The sanitizer build's counting: ASan owns malloc, so instead of
// interposing the allocation family (malloc_hooks.cc, new_hooks.cc, both
// compiled out here) cpprof registers malloc/free hooks with the sanitizer
// runtime, which calls them for every allocation and free it serves.
#include "capture/alloc_hooks.h"

#if defined(CPPROF_SANITIZE)

#include <atomic>
#include <cstddef>

#include "capture/alloc_counters.h"

// From the sanitizer runtime (compiler-rt's sanitizer/allocator_interface.h,
// which GCC does not install): registers up to five hook pairs, returns
// non-zero on success.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             size_t),
                                                         void (*free_hook)(const volatile void*));

extern "C" [[gnu::visibility("hidden")]] const char __start_cpprof_alloc_hooks[];
extern "C" [[gnu::visibility("hidden")]] const char __stop_cpprof_alloc_hooks[];

namespace cpprof::capture {
namespace {

std::atomic<int> g_installed{0};  // 0: not yet, 1: installed, -1: refused

[[gnu::section("cpprof_alloc_hooks")]] void on_malloc(const volatile void*, size_t size) {
  count_alloc(size);
}

[[gnu::section("cpprof_alloc_hooks")]] void on_free(const volatile void* ptr) {
  if (ptr != nullptr) count_free();
}

[[gnu::constructor(101)]] void install_at_load() { install_sanitizer_alloc_hooks(); }

}  // namespace

bool install_sanitizer_alloc_hooks() {
  int expected = 0;
  if (g_installed.compare_exchange_strong(expected, -1)) {
    if (__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0) g_installed.store(1);
  }
  return g_installed.load() == 1;
}

bool in_alloc_hooks(uintptr_t pc) {
  return pc >= reinterpret_cast<uintptr_t>(__start_cpprof_alloc_hooks) &&
         pc < reinterpret_cast<uintptr_t>(__stop_cpprof_alloc_hooks);
}

const char* underlying_allocator() { return ""; }
bool alloc_hooks_compiled_in() { return false; }

}  // namespace cpprof::capture

#endif  // CPPROF_SANITIZE

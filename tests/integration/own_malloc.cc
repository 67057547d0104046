// A program that defines malloc itself (as programs with a custom
// allocator do), so that cpprof's malloc loses the symbol lookup. Its
// allocator forwards to glibc and counts the calls it serves; `new` must
// reach it too (cpprof's operator new follows the process's malloc).
//
// Built twice: forwarding to glibc's __libc_* functions, and (own_malloc_next)
// to the next malloc in the loader's order, as a wrapper would.
//
// Prints "ready" (under CPPROF_HTTP it serves by then), then "new reached
// the program's malloc: yes|no"; exits when stdin closes.
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdio>

#ifdef OWN_MALLOC_VIA_NEXT
// A wrapper, as leak checkers and accounting shims are: the next malloc in
// the loader's order (cpprof's, when it is preloaded) does the work.
#include <dlfcn.h>
template <class Fn>
Fn next_function(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}
void* __libc_malloc(size_t size) {
  static auto* next = next_function<void* (*)(size_t)>("malloc");
  return next(size);
}
void __libc_free(void* ptr) {
  static auto* next = next_function<void (*)(void*)>("free");
  next(ptr);
}
void* __libc_calloc(size_t count, size_t size) {
  static auto* next = next_function<void* (*)(size_t, size_t)>("calloc");
  return next(count, size);
}
void* __libc_realloc(void* ptr, size_t size) {
  static auto* next = next_function<void* (*)(void*, size_t)>("realloc");
  return next(ptr, size);
}
#else
extern "C" void* __libc_malloc(size_t);
extern "C" void __libc_free(void*);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_realloc(void*, size_t);
#endif

namespace {
std::atomic<long> g_served{0};
}

// Exported, as a program's malloc is unless built with hidden visibility
// (as this tree is), so that it wins the lookup for every library.

extern "C" [[gnu::visibility("default")]] void* malloc(size_t size) {
  g_served.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size);
}
extern "C" [[gnu::visibility("default")]] void free(void* ptr) { __libc_free(ptr); }
extern "C" [[gnu::visibility("default")]] void* calloc(size_t count, size_t size) {
  g_served.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(count, size);
}
extern "C" [[gnu::visibility("default")]] void* realloc(void* ptr, size_t size) {
  g_served.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(ptr, size);
}

int main() {
  const long before = g_served.load();
  int* volatile value = new int(7);
  const long after = g_served.load();
  delete value;
  std::printf("ready\n");
  std::printf("new reached the program's malloc: %s\n", after > before ? "yes" : "no");
  std::fflush(stdout);
  char buffer[64];
  while (read(STDIN_FILENO, buffer, sizeof(buffer)) > 0) {
  }
  return 0;
}

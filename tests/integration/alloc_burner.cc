// A program that makes a known number of heap allocations, for the
// allocation counting tests:
//
//   alloc_burner --iterations N --size S
//
// Each iteration mallocs and frees S bytes, then new[]s and delete[]s S
// bytes: 2 allocations, 2 frees and 2*S bytes requested, all on the main
// thread, before "ready". Built twice: linked with cpprof (CPPROF_LINKED:
// serves on a free port and prints "port N") and plain, for LD_PRELOAD and
// `cpprof run`. Exits when stdin closes.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#ifdef CPPROF_LINKED
#include "cpprof/server.h"
#endif

namespace {

// Keeps the compiler from removing an allocation whose result is unused.
void escape(void* ptr) { asm volatile("" : : "g"(ptr) : "memory"); }

}  // namespace

int main(int argc, char** argv) {
  long iterations = 0;
  size_t size = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--iterations") == 0) iterations = std::atol(argv[i + 1]);
    if (std::strcmp(argv[i], "--size") == 0) size = std::strtoul(argv[i + 1], nullptr, 10);
  }
#ifdef CPPROF_LINKED
  cpprof::Server server({.address = "127.0.0.1:0", .log = "off"});
  if (!server.ok()) {
    std::fprintf(stderr, "alloc_burner: %s\n", server.error().c_str());
    return 1;
  }
  std::printf("port %u\n", server.port());
#endif
  for (long i = 0; i < iterations; ++i) {
    void* block = std::malloc(size);
    escape(block);
    std::free(block);
    char* array = new char[size];
    escape(array);
    delete[] array;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  char buffer[64];
  while (read(STDIN_FILENO, buffer, sizeof(buffer)) > 0) {
  }
  return 0;
}

// A program too short-lived to be asked over HTTP, for the CPPROF_OUT tests:
//
//   short_program [--abort]
//
// Burns about 0.5 s of CPU in short_burn, keeps 8 MiB allocated in
// short_alloc (64 KiB blocks), then returns from main (or aborts with
// --abort, when nothing may be written). Built twice: plain (for LD_PRELOAD
// and `cpprof run`) and linked with cpprof (short_program_linked).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "site.h"

namespace {

std::vector<void*>* g_kept = nullptr;  // reachable until exit

SITE unsigned long short_burn() {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  unsigned long x = 1;
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 10000; ++i) x = x * 6364136223846793005ul + 1442695040888963407ul;
  }
  return x;
}

SITE void short_alloc() {
  g_kept = new std::vector<void*>;
  for (int i = 0; i < 128; ++i) g_kept->push_back(std::malloc(64 << 10));
}

}  // namespace

int main(int argc, char** argv) {
  short_alloc();
  std::printf("%lu\n", short_burn());
  std::fflush(stdout);
  if (argc > 1 && std::strcmp(argv[1], "--abort") == 0) std::abort();
  return 0;
}

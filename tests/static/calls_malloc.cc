// Not part of cpprof: an object the capture symbol check must reject (it
// allocates, locks and prints), so that the check is known to be able to fail.
#include <cstdio>
#include <cstdlib>
#include <mutex>

std::mutex g_mutex;

void* allocate_and_print(unsigned long n) {
  std::lock_guard lock(g_mutex);
  std::printf("%lu\n", n);
  return std::malloc(n);
}

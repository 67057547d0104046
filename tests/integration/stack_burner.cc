// A test program whose CPU time goes where a frame-pointer walk gets lost:
// inside glibc's qsort (no frame pointers) and its comparator, inside
// std::sort's internals, and inside libraries loaded with dlopen() after
// the profiler started, one of them loaded and unloaded in a loop.
//
//   stack_burner --work qsort|stdsort|plugin|churn
//
// Built twice: linked with cpprof (CPPROF_LINKED: serves on a free port and
// prints "port N") and plain, for LD_PRELOAD and `cpprof run`. Prints
// "ready" once the work runs; exits when stdin closes.
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#ifdef CPPROF_LINKED
#include "cpprof/server.h"
#endif

namespace {

std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_sink{0};
std::string g_library_dir;

using HotLoop = uint64_t (*)(int64_t);

}  // namespace

// Kept out of any namespace and not inlined: the tests look for these names.
extern "C" [[gnu::noinline]] int qsort_compare_ints(const void* a, const void* b) {
  int x = *static_cast<const int*>(a);
  int y = *static_cast<const int*>(b);
  return (x > y) - (x < y);
}

[[gnu::noinline]] bool stdsort_less(int a, int b) { return a < b; }

[[gnu::noinline]] void fill(std::vector<int>* values, uint64_t* seed) {
  for (int& v : *values) {
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<int>(*seed >> 33);
  }
}

[[gnu::noinline]] void sort_with_qsort() {
  std::vector<int> values(20000);
  uint64_t seed = 1;
  while (!g_stop.load(std::memory_order_relaxed)) {
    fill(&values, &seed);
    qsort(values.data(), values.size(), sizeof(int), qsort_compare_ints);
    g_sink.fetch_add(static_cast<uint64_t>(values[0]), std::memory_order_relaxed);
  }
}

[[gnu::noinline]] void sort_with_std_sort() {
  std::vector<int> values(20000);
  uint64_t seed = 2;
  while (!g_stop.load(std::memory_order_relaxed)) {
    fill(&values, &seed);
    std::sort(values.begin(), values.end(), stdsort_less);
    g_sink.fetch_add(static_cast<uint64_t>(values[0]), std::memory_order_relaxed);
  }
}

HotLoop load(const char* file, const char* function, void** handle) {
  std::string path = g_library_dir + "/" + file;
  *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (*handle == nullptr) {
    std::fprintf(stderr, "stack_burner: %s\n", dlerror());
    std::exit(2);
  }
  return reinterpret_cast<HotLoop>(dlsym(*handle, function));
}

// Loaded a second after "ready", so while a profile already runs.
[[gnu::noinline]] void run_plugin() {
  std::this_thread::sleep_for(std::chrono::seconds(1));
  void* handle = nullptr;
  HotLoop hot = load("libcpprof_test_plugin.so", "plugin_hot_loop", &handle);
  while (!g_stop.load(std::memory_order_relaxed)) g_sink.fetch_add(hot(2000000));
}

// dlopen, burn a little inside, dlclose: again and again.
[[gnu::noinline]] void churn_libraries() {
  while (!g_stop.load(std::memory_order_relaxed)) {
    void* handle = nullptr;
    HotLoop hot = load("libcpprof_test_churn.so", "churn_hot_loop", &handle);
    g_sink.fetch_add(hot(1000000));
    dlclose(handle);
  }
}

int main(int argc, char** argv) {
  std::string work = "qsort";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--work") == 0 && i + 1 < argc) work = argv[++i];
  }
  std::string self = argv[0];
  g_library_dir = self.substr(0, self.rfind('/')) + "/../lib";
#ifdef CPPROF_LINKED
  const char* hz_text = std::getenv("CPPROF_CPU_HZ");
  int hz = hz_text != nullptr ? std::atoi(hz_text) : 100;
  cpprof::Server server({.address = "127.0.0.1:0", .cpu_hz = hz, .log = "off"});
  if (!server.ok()) {
    std::fprintf(stderr, "stack_burner: %s\n", server.error().c_str());
    return 1;
  }
  std::printf("port %u\n", server.port());
#endif
  // The work runs on the main thread, so that its stacks end in main().
  void (*run)() = nullptr;
  if (work == "qsort") {
    run = sort_with_qsort;
  } else if (work == "stdsort") {
    run = sort_with_std_sort;
  } else if (work == "plugin" || work == "churn") {
    run = run_plugin;
  } else {
    std::fprintf(stderr, "stack_burner: unknown --work %s\n", work.c_str());
    return 2;
  }
  std::thread churn;
  if (work == "churn") churn = std::thread(churn_libraries);
  std::thread stdin_watch([] {
    char buffer[64];
    while (read(STDIN_FILENO, buffer, sizeof(buffer)) > 0) {
    }
    g_stop = true;
  });
  std::printf("ready\n");
  std::fflush(stdout);
  run();
  stdin_watch.join();
  if (churn.joinable()) churn.join();
  return 0;
}

// A program that allocates known amounts at known call sites, for the heap
// profile tests:
//
//   heap_burner [--small-freed N] [--medium-freed N] [--medium-kept N]
//               [--large-kept N] [--small-kept N] [--grown N]
//               [--rate R (linked build only)]
//
// Each site is a function of its own that allocates N objects of one size
// in all, half on each of two worker threads, before "ready":
//
//   heap_small_freed    64 B      malloc, freed at once
//   heap_medium_freed   16 KiB    new[], deleted at once
//   heap_medium_kept    256 KiB   malloc, kept until exit
//   heap_large_kept     4 MiB     new[], kept until exit
//   heap_small_kept     64 B      new, kept until exit
//
// SIGUSR1 makes the main thread allocate `--grown` objects of 4 MiB at
// heap_grown (kept), then print "grown": growth at a time the test picks.
// Built twice: linked with cpprof (CPPROF_LINKED: serves on a free port,
// prints "port N" and sets the heap profile rate from --rate) and plain,
// for LD_PRELOAD and `cpprof run`. Exits when stdin closes.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#ifdef CPPROF_LINKED
#include "cpprof/heap_profile.h"
#include "cpprof/server.h"
#endif

#include "site.h"

namespace {

constexpr size_t kSmall = 64;
constexpr size_t kMedium = size_t{16} << 10;
constexpr size_t kMediumKept = size_t{256} << 10;
constexpr size_t kLarge = size_t{4} << 20;

// Keeps the compiler from removing an allocation whose result is unused.
void escape(void* ptr) { asm volatile("" : : "g"(ptr) : "memory"); }

struct Counts {
  long small_freed = 0;
  long medium_freed = 0;
  long medium_kept = 0;
  long large_kept = 0;
  long small_kept = 0;
  long grown = 0;
};

SITE void heap_small_freed(long n) {
  for (long i = 0; i < n; ++i) {
    void* block = std::malloc(kSmall);
    escape(block);
    std::free(block);
  }
}

SITE void heap_medium_freed(long n) {
  for (long i = 0; i < n; ++i) {
    char* array = new char[kMedium];
    escape(array);
    delete[] array;
  }
}

SITE void heap_medium_kept(long n, std::vector<void*>* kept) {
  for (long i = 0; i < n; ++i) {
    void* block = std::malloc(kMediumKept);
    escape(block);
    (*kept)[i] = block;
  }
}

SITE void heap_large_kept(long n, std::vector<char*>* kept) {
  for (long i = 0; i < n; ++i) {
    char* array = new char[kLarge];
    escape(array);
    (*kept)[i] = array;
  }
}

struct Small {
  char bytes[kSmall];
};

SITE void heap_small_kept(long n, std::vector<Small*>* kept) {
  for (long i = 0; i < n; ++i) {
    Small* object = new Small;
    escape(object);
    (*kept)[i] = object;
  }
}

SITE void heap_grown(long n, std::vector<void*>* kept) {
  for (long i = 0; i < n; ++i) {
    void* block = std::malloc(kLarge);
    escape(block);
    (*kept)[i] = block;
  }
}

// What the workers keep, never freed (the process exits with them live).
struct Kept;
Kept* g_kept = nullptr;                 // reachable from a global until exit
std::vector<void*>* g_grown = nullptr;  // likewise

struct Kept {
  std::vector<void*> medium;
  std::vector<char*> large;
  std::vector<Small*> small;
};

// Thread `index` of 2 does its half of every count (the first takes the odd one).
void worker(int index, const Counts& counts, Kept* kept) {
  auto half = [index](long n) { return index == 0 ? n - n / 2 : n / 2; };
  const long medium_kept = half(counts.medium_kept);
  const long large_kept = half(counts.large_kept);
  const long small_kept = half(counts.small_kept);
  kept->medium.resize(medium_kept);
  kept->large.resize(large_kept);
  kept->small.resize(small_kept);
  heap_small_freed(half(counts.small_freed));
  heap_medium_freed(half(counts.medium_freed));
  heap_medium_kept(medium_kept, &kept->medium);
  heap_large_kept(large_kept, &kept->large);
  heap_small_kept(small_kept, &kept->small);
}

volatile sig_atomic_t g_grow = 0;

void on_usr1(int) { g_grow = 1; }

}  // namespace

int main(int argc, char** argv) {
  Counts counts;
  long rate = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char* name = argv[i];
    const long value = std::atol(argv[i + 1]);
    if (std::strcmp(name, "--small-freed") == 0) counts.small_freed = value;
    if (std::strcmp(name, "--medium-freed") == 0) counts.medium_freed = value;
    if (std::strcmp(name, "--medium-kept") == 0) counts.medium_kept = value;
    if (std::strcmp(name, "--large-kept") == 0) counts.large_kept = value;
    if (std::strcmp(name, "--small-kept") == 0) counts.small_kept = value;
    if (std::strcmp(name, "--grown") == 0) counts.grown = value;
    if (std::strcmp(name, "--rate") == 0) rate = value;
  }
  struct sigaction action {};
  action.sa_handler = on_usr1;
  sigemptyset(&action.sa_mask);
  sigaction(SIGUSR1, &action, nullptr);
#ifdef CPPROF_LINKED
  if (rate >= 0) cpprof::set_heap_profile_rate(rate);
  cpprof::Server server({.address = "127.0.0.1:0", .log = "off"});
  if (!server.ok()) {
    std::fprintf(stderr, "heap_burner: %s\n", server.error().c_str());
    return 1;
  }
  std::printf("port %u\n", server.port());
  std::fflush(stdout);
#else
  (void)rate;  // the preloaded library takes CPPROF_HEAP_RATE instead
#endif
  // Never destroyed: what is kept stays reachable until after the last
  // static destructor, when LeakSanitizer checks (sanitizer build).
  Kept* kept = new Kept[2];
  g_kept = kept;
  std::thread first(worker, 0, std::cref(counts), &kept[0]);
  std::thread second(worker, 1, std::cref(counts), &kept[1]);
  first.join();
  second.join();
  auto& grown = *new std::vector<void*>(counts.grown);
  g_grown = &grown;
  std::printf("ready\n");
  std::fflush(stdout);
  // Polls rather than blocks in read(): SIGUSR1 may be delivered to any
  // thread (cpprof's too), so it need not interrupt this one.
  char buffer[64];
  bool done_growing = false;
  for (;;) {
    if (g_grow && !done_growing) {
      done_growing = true;
      heap_grown(counts.grown, &grown);
      std::printf("grown\n");
      std::fflush(stdout);
    }
    pollfd in{.fd = STDIN_FILENO, .events = POLLIN, .revents = 0};
    if (poll(&in, 1, 10) <= 0) continue;
    if (read(STDIN_FILENO, buffer, sizeof(buffer)) <= 0) break;
  }
  return 0;
}

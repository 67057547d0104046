// cpu_workload: a fixed amount of CPU-bound work on N threads (default 2),
// for measuring what CPU profiling costs. It is linked to nothing of ours;
// profilers are preloaded (bench/run_cpu_overhead.sh).
//
// Each thread runs `--iterations` tasks. A task descends a call chain of
// `--depth` frames through four distinct functions (all with frame
// pointers, a little arithmetic at every level, so samples land at many
// depths and a profiler's unwinder walks 10-20 frames), then at the bottom
// mixes the kinds of work real programs do:
//   - integer arithmetic over a small buffer (our own code, a leaf),
//   - memcpy of 4 KiB blocks, strlen over strings of varying length
//     (glibc: no frame pointers),
//   - qsort of 64 ints through a comparator of ours (our code called back
//     from glibc, so stacks cross a frame-pointer-less library).
// The work is fixed (not timed), so a slower run really did the same work
// more slowly. No allocation happens on the hot path.
//
// At the end it prints one line on stdout, key=value separated by spaces:
//   cpu_workload threads=2 iterations=... depth=... work_cpu_ns=...
//     process_cpu_ns=... user_ns=... sys_ns=... workers_cpu_ns=...
//     wall_ns=... checksum=...
// work_cpu_ns: getrusage(RUSAGE_SELF) user+sys, all threads of the process
//   (the profiler's own threads included), from just before the workers
//   start to just after they are joined. This is the number to compare.
// process_cpu_ns / user_ns / sys_ns: the same, from process start to the end
//   of the work (includes start-up, e.g. a preloaded profiler's set-up).
// workers_cpu_ns: the sum of the workers' own thread CPU clocks, which
//   includes time spent in their signal handlers but not the profiler's
//   other threads.
//
// Options:
//   --threads N       worker threads (default 2)
//   --iterations N    tasks per thread (default 700000; ~3.3 s of CPU per
//                     thread on our 2-vCPU AMD EPYC VM)
//   --depth N         frames in the call chain below the worker (default 14)
//   --start-fifo PATH open PATH (a FIFO) and read one byte before starting
//                     the work: lets a driver set up (open a profile
//                     request) while the program uses no CPU
//   --linger-ms N     after printing the result line, sleep N ms before
//                     exiting (lets a driver read the profiler's counters)
#include "workload_common.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using bench::clock_ns;
using bench::next_random;
using bench::parse_number;
using bench::process_usage;
using bench::Usage;

constexpr int kWords = 256;    // arithmetic buffer, 2 KiB
constexpr int kBlock = 4096;   // memcpy block
constexpr int kStrings = 32;   // strings for strlen
constexpr int kSortInts = 64;  // qsort array

// Per-thread state, allocated once before the work starts.
struct Scratch {
  uint64_t words[kWords];
  alignas(64) unsigned char src[kBlock];
  alignas(64) unsigned char dst[kBlock];
  char strings[kStrings][256];
  int sort_src[kSortInts];
  int sort_buf[kSortInts];
  uint64_t rng;
};

void init_scratch(Scratch* s, uint64_t seed) {
  s->rng = seed | 1;
  for (uint64_t& w : s->words) w = next_random(&s->rng);
  for (unsigned char& c : s->src) c = static_cast<unsigned char>(next_random(&s->rng));
  for (int i = 0; i < kStrings; ++i) {
    int len = 20 + static_cast<int>(next_random(&s->rng) % 220);  // 20..239 chars
    for (int j = 0; j < len; ++j) s->strings[i][j] = static_cast<char>('a' + (j * 7 + i) % 26);
    s->strings[i][len] = '\0';
  }
  for (int& v : s->sort_src) v = static_cast<int>(next_random(&s->rng) % 100000);
}

// --- the bottom of the stack: the mix ------------------------------------

[[gnu::noinline]] uint64_t mix_arithmetic(Scratch* s, uint64_t salt) {
  uint64_t h = salt ^ 0x9e3779b97f4a7c15ull;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kWords; ++i) {
      uint64_t w = s->words[i] ^ h;
      w *= 0xff51afd7ed558ccdull;
      w ^= w >> 33;
      s->words[i] = w;
      h = (h + w) * 0xc4ceb9fe1a85ec53ull;
    }
  }
  return h;
}

[[gnu::noinline]] uint64_t copy_blocks(Scratch* s, uint64_t salt) {
  uint64_t sum = 0;
  for (int i = 0; i < 8; ++i) {
    // Vary the size so glibc's memcpy takes different paths.
    size_t n = kBlock - ((salt + static_cast<uint64_t>(i) * 131) % 512);
    std::memcpy(s->dst, s->src, n);
    s->src[(salt + static_cast<uint64_t>(i)) % kBlock] ^= s->dst[n / 2];
    sum += s->dst[n - 1];
  }
  return sum;
}

[[gnu::noinline]] uint64_t measure_strings(Scratch* s, uint64_t salt) {
  uint64_t total = 0;
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < kStrings; ++i) {
      char* str = s->strings[i];
      total += std::strlen(str);
      // Keep the compiler from hoisting strlen out of the loop.
      str[(salt + static_cast<uint64_t>(round)) % 8] = static_cast<char>('a' + (total % 26));
    }
  }
  return total;
}

[[gnu::noinline]] int compare_ints(const void* a, const void* b) {
  int x = *static_cast<const int*>(a);
  int y = *static_cast<const int*>(b);
  return (x > y) - (x < y);
}

[[gnu::noinline]] uint64_t sort_small(Scratch* s, uint64_t salt) {
  std::memcpy(s->sort_buf, s->sort_src, sizeof s->sort_buf);
  std::qsort(s->sort_buf, kSortInts, sizeof(int), compare_ints);
  s->sort_src[salt % kSortInts] = static_cast<int>(next_random(&s->rng) % 100000);
  return static_cast<uint64_t>(s->sort_buf[kSortInts / 2]);
}

[[gnu::noinline]] uint64_t bottom_of_stack(Scratch* s, uint64_t salt) {
  uint64_t r = mix_arithmetic(s, salt);
  r += copy_blocks(s, salt);
  r += measure_strings(s, salt);
  r += sort_small(s, salt);
  return r;
}

// --- the call chain: four distinct functions, calling each other ----------

uint64_t stage_a(Scratch* s, int depth, uint64_t acc);
uint64_t stage_b(Scratch* s, int depth, uint64_t acc);
uint64_t stage_c(Scratch* s, int depth, uint64_t acc);
uint64_t stage_d(Scratch* s, int depth, uint64_t acc);

// A little work at every level, so some samples land mid-stack.
[[gnu::always_inline]] inline uint64_t level_work(uint64_t acc, int rounds) {
  for (int i = 0; i < rounds; ++i) acc = (acc ^ (acc >> 29)) * 0xbf58476d1ce4e5b9ull + 1;
  return acc;
}

// Work after the call keeps it from becoming a tail call (which would
// remove the frame).
[[gnu::noinline]] uint64_t stage_a(Scratch* s, int depth, uint64_t acc) {
  acc = level_work(acc, 40);
  uint64_t r = depth <= 0 ? bottom_of_stack(s, acc) : stage_b(s, depth - 1, acc);
  return r ^ level_work(acc, 8);
}
[[gnu::noinline]] uint64_t stage_b(Scratch* s, int depth, uint64_t acc) {
  acc = level_work(acc, 60);
  uint64_t r = depth <= 0 ? bottom_of_stack(s, acc) : stage_c(s, depth - 1, acc);
  return r + level_work(acc, 8);
}
[[gnu::noinline]] uint64_t stage_c(Scratch* s, int depth, uint64_t acc) {
  acc = level_work(acc, 30);
  uint64_t r = depth <= 0 ? bottom_of_stack(s, acc) : stage_d(s, depth - 1, acc);
  return r - level_work(acc, 8);
}
[[gnu::noinline]] uint64_t stage_d(Scratch* s, int depth, uint64_t acc) {
  acc = level_work(acc, 50);
  uint64_t r = depth <= 0 ? bottom_of_stack(s, acc) : stage_a(s, depth - 1, acc);
  return r * 3 + level_work(acc, 8);
}

struct WorkerResult {
  uint64_t checksum = 0;
  int64_t cpu_ns = 0;
};

[[gnu::noinline]] void run_worker(int index, long iterations, int depth, WorkerResult* out) {
  Scratch* s = new Scratch;
  init_scratch(s, 0x1234567ull * static_cast<uint64_t>(index + 1));
  uint64_t checksum = 0;
  for (long i = 0; i < iterations; ++i) {
    checksum += stage_a(s, depth - 1, checksum + static_cast<uint64_t>(i));
  }
  delete s;
  out->checksum = checksum;
  out->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

[[noreturn]] void usage_error(const char* message) {
  std::fprintf(stderr,
               "cpu_workload: %s\n"
               "usage: cpu_workload [--threads N] [--iterations N] [--depth N]\n"
               "                    [--start-fifo PATH] [--linger-ms N]\n",
               message);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  long iterations = 700000;
  int depth = 14;
  const char* start_fifo = nullptr;
  long linger_ms = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(("missing value for " + arg).c_str());
      return argv[++i];
    };
    if (arg == "--threads") {
      threads = static_cast<int>(parse_number(value(), 1, 256, "--threads", usage_error));
    } else if (arg == "--iterations") {
      iterations = parse_number(value(), 1, 1000000000L, "--iterations", usage_error);
    } else if (arg == "--depth") {
      depth = static_cast<int>(parse_number(value(), 1, 1000, "--depth", usage_error));
    } else if (arg == "--start-fifo") {
      start_fifo = value();
    } else if (arg == "--linger-ms") {
      linger_ms = parse_number(value(), 0, 3600000, "--linger-ms", usage_error);
    } else {
      usage_error(("unknown argument " + arg).c_str());
    }
  }

  if (start_fifo != nullptr) bench::wait_for_start("cpu_workload", start_fifo);

  Usage before = process_usage();
  int64_t wall_start = clock_ns(CLOCK_MONOTONIC);
  std::vector<WorkerResult> results(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back(run_worker, t, iterations, depth, &results[static_cast<size_t>(t)]);
  }
  for (std::thread& w : workers) w.join();
  int64_t wall_ns = clock_ns(CLOCK_MONOTONIC) - wall_start;
  Usage after = process_usage();

  uint64_t checksum = 0;
  int64_t workers_cpu_ns = 0;
  for (const WorkerResult& r : results) {
    checksum ^= r.checksum;
    workers_cpu_ns += r.cpu_ns;
  }
  int64_t work_cpu_ns = (after.user_ns - before.user_ns) + (after.sys_ns - before.sys_ns);
  std::printf("cpu_workload threads=%d iterations=%ld depth=%d work_cpu_ns=%" PRId64
              " process_cpu_ns=%" PRId64 " user_ns=%" PRId64 " sys_ns=%" PRId64
              " workers_cpu_ns=%" PRId64 " wall_ns=%" PRId64 " checksum=%016" PRIx64 "\n",
              threads, iterations, depth, work_cpu_ns, after.user_ns + after.sys_ns, after.user_ns,
              after.sys_ns, workers_cpu_ns, wall_ns, checksum);
  std::fflush(stdout);
  if (linger_ms > 0) {
    timespec pause{linger_ms / 1000, (linger_ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
  }
  return 0;
}

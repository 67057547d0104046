// alloc_workload: a fixed amount of allocation-heavy work on N threads
// (default 2), for measuring what intercepting the allocation functions
// costs. It is linked to nothing of ours; cpprof, heap profilers and
// replacement allocators are preloaded (bench/run_alloc_overhead.sh).
//
// Each thread runs `--iterations` steps. A step picks one action with a
// seeded generator (the same sequence in every run):
//   30 %  replace a random slot of a window of 4096 live blocks through the
//         C functions: free the old block, then malloc (1 in 32 calloc,
//         1 in 128 posix_memalign, 1 in 128 aligned_alloc), or realloc the
//         old block in place of both (1 in 32 when it came from malloc)
//   20 %  replace a random slot through C++: half typed objects of 16-256 B
//         (new T / sized delete), 1 in 64 an over-aligned type (aligned
//         new/delete), 1 in 32 nothrow new[], the rest new char[] / delete[]
//   25 %  short-lived temporaries: 2-9 blocks of 8-128 B (malloc and new[]
//         alternately), freed odd ones first, then even ones
//   10 %  build a string by appends of 4-67 chars until a target length
//         (16-515 chars, 1 in 16 up to 4 KiB), every growth a new buffer, and
//         swap it into a window of 1024 strings (the one displaced is freed)
//    6 %  push_back 1-300 ints into a fresh std::vector, sum, drop it
//    5 %  std::map<uint32_t, uint64_t> churn: insert a random key of 4096, or
//         erase it if present (one node allocated or freed)
//    4 %  the same with an std::unordered_map (buckets reserved up front)
// Sizes of the slot blocks (C and new char[]): 99 % small, 2/3 of them
// 8-64 B and 1/3 65-256 B; 1 % 1-64 KiB (log-uniform); 1 in 50 000 exactly
// 1 MiB. Slot blocks live until their slot is picked again, so frees come in
// random order, not last-in first-out. Every block is written (first and
// last byte) and read back into the checksum before it is freed, and
// pointers go through memory (the windows, a batch array indexed by a
// run-time count), so the compiler cannot pair up and drop an allocation;
// callgrind's call counts match the counts below (to 9 in 565 000, calls
// glibc makes internally). About 5.6 allocation-family calls per
// step, ~36 M per CPU-second on our VM (~73 M/s with both threads running).
//
// The work is fixed (not timed). The program counts the allocation-family
// calls it makes itself: container growth is counted by watching
// capacity() / bucket_count() change (libstdc++ keeps strings of up to 15
// chars in the object, so only longer ones have a buffer). ops = allocs +
// frees + reallocs; the same in every run of the same arguments, as is the
// checksum (which depends only on the bytes written, never on addresses).
//
// At the end it prints one line on stdout, key=value separated by spaces:
//   alloc_workload threads=2 iterations=... ops=... allocs=... frees=...
//     reallocs=... ops_per_s=... ops_per_cpu_s=... work_cpu_ns=...
//     process_cpu_ns=... user_ns=... sys_ns=... workers_cpu_ns=...
//     wall_ns=... checksum=...
// work_cpu_ns: getrusage(RUSAGE_SELF) user+sys, all threads of the process
//   (a profiler's own threads included), from just before the workers start
//   to just after they are joined. This is the number to compare.
// ops_per_s: ops per wall-second of that window; ops_per_cpu_s: per
//   CPU-second.
// process_cpu_ns / user_ns / sys_ns: from process start to the end of the
//   work (includes start-up, e.g. a preloaded library's set-up).
// workers_cpu_ns: the sum of the workers' own thread CPU clocks.
//
// Options:
//   --threads N       worker threads (default 2)
//   --iterations N    steps per thread (default 10000000; ~1.5 CPU-s per
//                     thread on our 2-vCPU AMD EPYC VM)
//   --start-fifo PATH open PATH (a FIFO) and read one byte before starting
//                     the work: lets a driver set up while the program uses
//                     no CPU
//   --linger-ms N     after printing the result line, sleep N ms before
//                     exiting (lets a driver read the profiler's counters)
#include "workload_common.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using bench::clock_ns;
using bench::next_random;
using bench::parse_number;
using bench::process_usage;
using bench::Usage;

constexpr int kSlots = 4096;    // live blocks per thread
constexpr int kStrings = 1024;  // live strings per thread
constexpr uint32_t kKeys = 4096;
constexpr size_t kSsoChars = 15;  // libstdc++: longer strings have a heap buffer
constexpr size_t kMiB = 1 << 20;

// 4 KiB of text to append from, so appends copy real bytes.
constexpr size_t kTextSize = 4096;
char g_text[kTextSize];

struct Counts {
  uint64_t allocs = 0;
  uint64_t frees = 0;
  uint64_t reallocs = 0;
};

// How a slot's block was obtained, so it goes back through the matching
// function (each form is a separate entry point an interposer must cover).
enum class Kind : uint8_t { kEmpty, kMalloc, kNewArray, kTyped };

struct Slot {
  unsigned char* p = nullptr;
  uint32_t size = 0;
  Kind kind = Kind::kEmpty;
  uint8_t type = 0;  // index into kTypes for kTyped
};

// Typed objects: `new T` / `delete p` on a complete type, which GCC compiles
// to the sized operator delete (C++14 sized deallocation).
template <size_t N>
struct Blob {
  unsigned char bytes[N];
};
// Over-aligned: operator new(size_t, align_val_t) and its sized delete.
struct alignas(64) Line {
  unsigned char bytes[192];
};

template <typename T>
unsigned char* make_typed() {
  return reinterpret_cast<unsigned char*>(new T);
}
template <typename T>
void drop_typed(unsigned char* p) {
  delete reinterpret_cast<T*>(p);
}

struct TypedKind {
  uint32_t size;
  unsigned char* (*make)();
  void (*drop)(unsigned char*);
};
constexpr TypedKind kTypes[] = {
    {16, make_typed<Blob<16>>, drop_typed<Blob<16>>},
    {24, make_typed<Blob<24>>, drop_typed<Blob<24>>},
    {32, make_typed<Blob<32>>, drop_typed<Blob<32>>},
    {48, make_typed<Blob<48>>, drop_typed<Blob<48>>},
    {64, make_typed<Blob<64>>, drop_typed<Blob<64>>},
    {96, make_typed<Blob<96>>, drop_typed<Blob<96>>},
    {128, make_typed<Blob<128>>, drop_typed<Blob<128>>},
    {256, make_typed<Blob<256>>, drop_typed<Blob<256>>},
    {sizeof(Line), make_typed<Line>, drop_typed<Line>},
};
constexpr uint8_t kBlobTypes = 8;  // kTypes[8] is the aligned one
constexpr uint8_t kLineType = 8;

// Everything a worker keeps alive between steps. Built (and its own storage
// allocated) by the main thread before the measured window, so the window
// holds only the calls the worker counts.
struct Worker {
  uint64_t rng = 1;
  std::array<Slot, kSlots> slots{};
  std::array<std::string, kStrings> strings{};
  std::map<uint32_t, uint64_t> tree;
  std::unordered_map<uint32_t, uint64_t> table;
  Counts counts;
  uint64_t checksum = 0;
  int64_t cpu_ns = 0;
};

uint32_t draw_size(uint64_t r) {
  uint64_t pick = r % 100000;
  r /= 100000;
  if (pick < 2) return kMiB;  // 1 in 50 000
  if (pick < 1000) {          // 1 %: 1-64 KiB, log-uniform
    uint32_t base = 1024u << (r % 6);
    return base + static_cast<uint32_t>((r >> 3) % base);
  }
  if (pick % 3 != 0) return 8 + static_cast<uint32_t>(r % 57);  // 8-64 B
  return 65 + static_cast<uint32_t>(r % 192);                   // 65-256 B
}

void touch(unsigned char* p, uint32_t size, uint64_t r) {
  p[0] = static_cast<unsigned char>(r);
  p[size - 1] = static_cast<unsigned char>(r >> 8);
}

void release(Worker* w, Slot* s) {
  if (s->kind == Kind::kEmpty) return;
  w->checksum += s->p[0] + 3u * s->p[s->size - 1];
  switch (s->kind) {
    case Kind::kMalloc:
      std::free(s->p);
      break;
    case Kind::kNewArray:
      delete[] s->p;
      break;
    case Kind::kTyped:
      kTypes[s->type].drop(s->p);
      break;
    case Kind::kEmpty:
      break;
  }
  ++w->counts.frees;
  s->kind = Kind::kEmpty;
  s->p = nullptr;
}

[[gnu::noinline]] void replace_raw(Worker* w, uint64_t r) {
  Slot* s = &w->slots[r % kSlots];
  r /= kSlots;
  unsigned form = static_cast<unsigned>(r % 128);
  r /= 128;
  uint32_t size = draw_size(r);
  r = next_random(&w->rng);
  if (form < 4 && s->kind == Kind::kMalloc) {
    w->checksum += s->p[0];
    auto* p = static_cast<unsigned char*>(std::realloc(s->p, size));
    if (p == nullptr) std::abort();
    ++w->counts.reallocs;
    s->p = p;
    s->size = size;
    touch(p, size, r);
    return;
  }
  release(w, s);
  void* p = nullptr;
  if (form < 8) {
    p = std::calloc(1, size);
    if (p != nullptr) w->checksum += static_cast<unsigned char*>(p)[size / 2];  // zero
  } else if (form == 8) {
    if (posix_memalign(&p, 64, size) != 0) p = nullptr;
  } else if (form == 9) {
    size = (size + 63) & ~63u;  // aligned_alloc wants a multiple of the alignment
    p = std::aligned_alloc(64, size);
  } else {
    p = std::malloc(size);
  }
  if (p == nullptr) std::abort();
  ++w->counts.allocs;
  *s = {static_cast<unsigned char*>(p), size, Kind::kMalloc, 0};
  touch(s->p, size, r);
}

[[gnu::noinline]] void replace_new(Worker* w, uint64_t r) {
  Slot* s = &w->slots[r % kSlots];
  r /= kSlots;
  unsigned form = static_cast<unsigned>(r % 128);
  r /= 128;
  release(w, s);
  if (form < 64) {
    uint8_t type = static_cast<uint8_t>(r % kBlobTypes);
    *s = {kTypes[type].make(), kTypes[type].size, Kind::kTyped, type};
  } else if (form < 66) {
    *s = {kTypes[kLineType].make(), kTypes[kLineType].size, Kind::kTyped, kLineType};
  } else {
    uint32_t size = draw_size(r);
    unsigned char* p = form < 70 ? new (std::nothrow) unsigned char[size] : new unsigned char[size];
    if (p == nullptr) std::abort();
    *s = {p, size, Kind::kNewArray, 0};
  }
  ++w->counts.allocs;
  touch(s->p, s->size, next_random(&w->rng));
}

// Short-lived temporaries, the commonest pattern: a batch of 2-9 small
// blocks (malloc'd and new'd alternately), written, read, then freed odd
// ones first and even ones after, so the order is neither FIFO nor LIFO.
[[gnu::noinline]] void temporaries(Worker* w, uint64_t r) {
  constexpr int kMaxBatch = 9;
  unsigned char* batch[kMaxBatch];
  uint32_t sizes[kMaxBatch];
  int n = 2 + static_cast<int>(r % (kMaxBatch - 1));
  r /= kMaxBatch - 1;
  for (int i = 0; i < n; ++i) {
    uint32_t size = 8 + static_cast<uint32_t>((r >> (i * 5)) % 121);  // 8-128 B
    batch[i] =
        i % 2 == 0 ? static_cast<unsigned char*>(std::malloc(size)) : new unsigned char[size];
    if (batch[i] == nullptr) std::abort();
    sizes[i] = size;
    touch(batch[i], size, r >> i);
  }
  for (int start = 1; start >= 0; --start) {
    for (int i = start; i < n; i += 2) {
      w->checksum += batch[i][0] + batch[i][sizes[i] - 1];
      if (i % 2 == 0) {
        std::free(batch[i]);
      } else {
        delete[] batch[i];
      }
    }
  }
  w->counts.allocs += static_cast<uint64_t>(n);
  w->counts.frees += static_cast<uint64_t>(n);
}

[[gnu::noinline]] void grow_string(Worker* w, uint64_t r) {
  size_t target = 16 + (r % 16 == 0 ? (r >> 4) % 4081 : (r >> 4) % 500);
  std::string s;
  while (s.size() < target) {
    uint64_t q = next_random(&w->rng);
    // Pieces of 4-67 chars from anywhere in the first half of the text (a
    // mask, not a modulo: a division per append would cost as much as the
    // append).
    size_t len = 4 + (q & 63);
    size_t from = (q >> 8) & (kTextSize / 2 - 1);
    size_t before = s.capacity();
    s.append(g_text + from, len);
    if (s.capacity() != before) {
      ++w->counts.allocs;
      if (before > kSsoChars) ++w->counts.frees;
    }
  }
  std::string& slot = w->strings[(r >> 20) % kStrings];
  w->checksum += static_cast<unsigned char>(slot.empty() ? 0 : slot.back()) + s.size();
  slot.swap(s);
  // `s` now holds the displaced string, freed when it goes out of scope.
  if (s.capacity() > kSsoChars) ++w->counts.frees;
}

[[gnu::noinline]] void grow_vector(Worker* w, uint64_t r) {
  size_t n = 1 + r % 300;
  std::vector<uint32_t> v;
  for (size_t i = 0; i < n; ++i) {
    size_t before = v.capacity();
    v.push_back(static_cast<uint32_t>(r >> (i % 32)) + static_cast<uint32_t>(i));
    if (v.capacity() != before) {
      ++w->counts.allocs;
      if (before != 0) ++w->counts.frees;
    }
  }
  uint64_t sum = 0;
  for (uint32_t x : v) sum += x;
  w->checksum += sum;
  if (v.capacity() != 0) ++w->counts.frees;
}

[[gnu::noinline]] void churn_tree(Worker* w, uint64_t r) {
  uint32_t key = static_cast<uint32_t>(r % kKeys);
  auto it = w->tree.find(key);
  if (it == w->tree.end()) {
    w->tree.emplace(key, r);
    ++w->counts.allocs;
  } else {
    w->checksum += it->second;
    w->tree.erase(it);
    ++w->counts.frees;
  }
}

[[gnu::noinline]] void churn_table(Worker* w, uint64_t r) {
  uint32_t key = static_cast<uint32_t>(r % kKeys);
  size_t buckets = w->table.bucket_count();
  auto it = w->table.find(key);
  if (it == w->table.end()) {
    w->table.emplace(key, r);
    ++w->counts.allocs;
  } else {
    w->checksum += it->second;
    w->table.erase(it);
    ++w->counts.frees;
  }
  // Buckets were reserved for more keys than exist: a rehash would be a bug
  // in the counts, so count it rather than assume it away.
  if (w->table.bucket_count() != buckets) {
    ++w->counts.allocs;
    ++w->counts.frees;
  }
}

[[gnu::noinline]] void run_worker(Worker* w, long iterations) {
  for (long i = 0; i < iterations; ++i) {
    uint64_t r = next_random(&w->rng);
    unsigned action = static_cast<unsigned>(r % 100);
    r /= 100;
    if (action < 30) {
      replace_raw(w, r);
    } else if (action < 50) {
      replace_new(w, r);
    } else if (action < 75) {
      temporaries(w, r);
    } else if (action < 85) {
      grow_string(w, r);
    } else if (action < 91) {
      grow_vector(w, r);
    } else if (action < 96) {
      churn_tree(w, r);
    } else {
      churn_table(w, r);
    }
  }
  // Free what is still live here, in the window, so every allocation the
  // worker made is matched by a free it counted.
  for (Slot& s : w->slots) release(w, &s);
  for (std::string& s : w->strings) {
    if (s.capacity() > kSsoChars) ++w->counts.frees;
    std::string().swap(s);
  }
  w->counts.frees += w->tree.size() + w->table.size();
  w->tree.clear();
  w->table.clear();
  w->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

[[noreturn]] void usage_error(const char* message) {
  std::fprintf(stderr,
               "alloc_workload: %s\n"
               "usage: alloc_workload [--threads N] [--iterations N]\n"
               "                      [--start-fifo PATH] [--linger-ms N]\n",
               message);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  long iterations = 10000000;
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
    } else if (arg == "--start-fifo") {
      start_fifo = value();
    } else if (arg == "--linger-ms") {
      linger_ms = parse_number(value(), 0, 3600000, "--linger-ms", usage_error);
    } else {
      usage_error(("unknown argument " + arg).c_str());
    }
  }

  uint64_t text_rng = 0x5eed;
  for (char& c : g_text) c = static_cast<char>('a' + next_random(&text_rng) % 26);
  std::vector<std::unique_ptr<Worker>> workers_state;
  for (int t = 0; t < threads; ++t) {
    auto w = std::make_unique<Worker>();
    w->rng = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(t + 1) | 1;
    w->table.reserve(2 * kKeys);
    workers_state.push_back(std::move(w));
  }

  if (start_fifo != nullptr) bench::wait_for_start("alloc_workload", start_fifo);

  Usage before = process_usage();
  int64_t wall_start = clock_ns(CLOCK_MONOTONIC);
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back(run_worker, workers_state[static_cast<size_t>(t)].get(), iterations);
  }
  for (std::thread& w : workers) w.join();
  int64_t wall_ns = clock_ns(CLOCK_MONOTONIC) - wall_start;
  Usage after = process_usage();

  Counts total;
  uint64_t checksum = 0;
  int64_t workers_cpu_ns = 0;
  for (const auto& w : workers_state) {
    total.allocs += w->counts.allocs;
    total.frees += w->counts.frees;
    total.reallocs += w->counts.reallocs;
    checksum = checksum * 31 + w->checksum;
    workers_cpu_ns += w->cpu_ns;
  }
  uint64_t ops = total.allocs + total.frees + total.reallocs;
  int64_t work_cpu_ns = (after.user_ns - before.user_ns) + (after.sys_ns - before.sys_ns);
  double ops_per_s =
      wall_ns > 0 ? static_cast<double>(ops) * 1e9 / static_cast<double>(wall_ns) : 0;
  double ops_per_cpu_s =
      work_cpu_ns > 0 ? static_cast<double>(ops) * 1e9 / static_cast<double>(work_cpu_ns) : 0;
  std::printf("alloc_workload threads=%d iterations=%ld ops=%" PRIu64 " allocs=%" PRIu64
              " frees=%" PRIu64 " reallocs=%" PRIu64
              " ops_per_s=%.0f ops_per_cpu_s=%.0f work_cpu_ns=%" PRId64 " process_cpu_ns=%" PRId64
              " user_ns=%" PRId64 " sys_ns=%" PRId64 " workers_cpu_ns=%" PRId64 " wall_ns=%" PRId64
              " checksum=%016" PRIx64 "\n",
              threads, iterations, ops, total.allocs, total.frees, total.reallocs, ops_per_s,
              ops_per_cpu_s, work_cpu_ns, after.user_ns + after.sys_ns, after.user_ns, after.sys_ns,
              workers_cpu_ns, wall_ns, checksum);
  std::fflush(stdout);
  if (linger_ms > 0) {
    timespec pause{linger_ms / 1000, (linger_ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
  }
  return 0;
}

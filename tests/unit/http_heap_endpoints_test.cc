// /debug/pprof/heap, /allocs and /delta_heap over real sockets, served from
// hand-made snapshots: Go's headers, what `go tool pprof -symbolize=none`
// reads, each sample index, the 400s, and cumulative values that only grow.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/heap_entries.h"
#include "http/server.h"
#include "support/http_client.h"
#include "support/pprof_tool.h"
#include "symbolize/symbolizer.h"

namespace cpprof::api {
namespace {

using test::http_get;
using test::HttpResponse;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int64_t kRate = 4096;

volatile uint64_t g_return_address = 0;
volatile int g_sink = 0;

[[gnu::noinline]] void note_return_address() {
  g_return_address =
      reinterpret_cast<uint64_t>(__builtin_extract_return_addr(__builtin_return_address(0)));
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] uint64_t http_heap_small_site() {
  note_return_address();
  g_sink = g_sink + 1;  // distinct bodies: identical ones would be folded into one
  return g_return_address;
}

[[gnu::noinline]] uint64_t http_heap_large_site() {
  note_return_address();
  g_sink = g_sink + 2;  // distinct bodies: identical ones would be folded into one
  return g_return_address;
}

[[gnu::noinline]] uint64_t http_heap_main() {
  note_return_address();
  g_sink = g_sink + 3;  // distinct bodies: identical ones would be folded into one
  return g_return_address;
}

const uint64_t kSmall = http_heap_small_site();
const uint64_t kLarge = http_heap_large_site();
const uint64_t kMain = http_heap_main();

// Snapshots of a process that keeps allocating: the k-th holds 10*k sampled
// 64-byte objects (half of them freed) and k sampled 1 MiB ones (kept), and
// a bucket without stack.
class FakeHeap {
 public:
  sources::HeapSnapshot take() {
    std::lock_guard lock(mu_);
    sources::HeapSnapshot s;
    if (off_) {
      s.unavailable = "heap profiling is off (CPPROF_HEAP_RATE=0)";
      return s;
    }
    const uint64_t k = ++taken_;
    s.rate = kRate;
    s.time_nanos = 1'700'000'000'000'000'000 + static_cast<int64_t>(k) * 1'000'000'000;
    s.buckets.push_back({{kSmall, kMain}, 10 * k, 640 * k, 5 * k, 320 * k});
    s.buckets.push_back({{kLarge, kMain}, k, k << 20, 0, 0});
    s.buckets.push_back({{}, 1, 100, 0, 0});
    return s;
  }
  void set_off(bool off) {
    std::lock_guard lock(mu_);
    off_ = off;
  }
  uint64_t taken() {
    std::lock_guard lock(mu_);
    return taken_;
  }

 private:
  std::mutex mu_;
  uint64_t taken_ = 0;
  bool off_ = false;
};

class HttpHeapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto registry = std::make_shared<http::Registry>();
    add_heap_entries(
        *registry, symbolizer_, [heap = heap_] { return heap->take(); }, [] { return 3; });
    http::ServerConfig config;
    config.port = 0;
    server_ = std::make_unique<http::Server>(config, registry);
    std::string error;
    ASSERT_TRUE(server_->start(&error)) << error;
    port_ = server_->port();
  }

  HttpResponse get(const std::string& path) { return http_get(port_, "/debug/pprof/" + path); }

  // The profile at `path`, checked to be served as Go serves it.
  test::RawProfile fetch(const std::string& path, const std::string& filename) {
    HttpResponse r = get(path);
    EXPECT_EQ(r.status, 200) << path << ": " << r.error << r.body;
    EXPECT_EQ(r.header("Content-Type"), "application/octet-stream") << path;
    EXPECT_EQ(r.header("Content-Disposition"), "attachment; filename=\"" + filename + "\"");
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
    test::RawProfile raw;
    EXPECT_TRUE(test::read_raw(r.body, &raw)) << path;
    body_ = r.body;
    return raw;
  }

  symbolize::Symbolizer symbolizer_;
  std::shared_ptr<FakeHeap> heap_ = std::make_shared<FakeHeap>();
  std::unique_ptr<http::Server> server_;
  uint16_t port_ = 0;
  std::string body_;  // of the last fetch()
};

std::map<std::string, std::vector<int64_t>> values_by_leaf(const test::RawProfile& raw) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const test::RawSample& s : raw.samples) out[raw.stack(s).at(0)] = s.values;
  return out;
}

TEST_F(HttpHeapTest, PprofReadsEveryEndpointWithGoTypes) {
  for (const char* name : {"heap", "allocs", "delta_heap"}) {
    SCOPED_TRACE(name);
    test::RawProfile raw = fetch(name, name);
    ASSERT_EQ(raw.sample_types.size(), 4u);
    EXPECT_EQ(raw.sample_types[0].type, "alloc_objects");
    EXPECT_EQ(raw.sample_types[1].type, "alloc_space");
    EXPECT_EQ(raw.sample_types[2].type, "inuse_objects");
    EXPECT_EQ(raw.sample_types[3].type, "inuse_space");
    EXPECT_EQ(raw.period_type.type, "space");
    EXPECT_EQ(raw.period_type.unit, "bytes");
    EXPECT_EQ(raw.period, kRate);
    EXPECT_EQ(raw.samples.size(), 3u);
    for (const test::RawSample& s : raw.samples) EXPECT_EQ(s.labels.count("bytes"), 1u);
  }
}

TEST_F(HttpHeapTest, EverySampleIndexWorksAndEachEndpointHasGosDefault) {
  const std::map<std::string, std::string> defaults = {
      {"heap", "inuse_space"}, {"allocs", "alloc_space"}, {"delta_heap", "inuse_space"}};
  for (const auto& [name, default_type] : defaults) {
    SCOPED_TRACE(name);
    fetch(name, name);
    const std::string body = body_;
    test::PprofResult top = test::run_pprof_on_bytes(body, {"-top"});
    ASSERT_TRUE(top.ok()) << top.err;
    EXPECT_THAT(top.out, HasSubstr("Type: " + default_type + "\n"));
    for (const char* index : {"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}) {
      test::PprofResult r = test::run_pprof_on_bytes(
          body, {"-top", "-nodefraction=0", std::string("-sample_index=") + index});
      ASSERT_TRUE(r.ok()) << index << ": " << r.err;
      EXPECT_THAT(r.out, HasSubstr(std::string("Type: ") + index + "\n"));
      EXPECT_THAT(r.out, HasSubstr("http_heap_large_site")) << index;
      EXPECT_THAT(r.out, HasSubstr("http_heap_small_site")) << index;
    }
  }
}

TEST_F(HttpHeapTest, BadParametersGet400AndTheServerGoesOn) {
  for (const char* name : {"heap", "allocs", "delta_heap"}) {
    for (const char* query : {"?debug=9", "?seconds=-1", "?seconds=2&debug=1", "?seconds=x"}) {
      HttpResponse r = get(std::string(name) + query);
      EXPECT_EQ(r.status, 400) << name << query << ": " << r.body;
      EXPECT_EQ(r.header("X-Go-Pprof"), "1");
    }
  }
  // delta_heap answers as godeltaprof's: neither a window nor a text form.
  EXPECT_EQ(get("delta_heap?seconds=1").status, 400);
  EXPECT_EQ(get("delta_heap?debug=1").status, 400);
  EXPECT_EQ(heap_->taken(), 0u) << "a refused request must not take a snapshot";
  EXPECT_EQ(get("heap").status, 200);
  EXPECT_EQ(get("heap?gc=1").status, 200);  // Go's parameter, accepted
}

TEST_F(HttpHeapTest, CumulativeValuesNeverDecrease) {
  test::RawProfile first = fetch("allocs", "allocs");
  test::RawProfile second = fetch("allocs", "allocs");
  auto before = values_by_leaf(first);
  auto after = values_by_leaf(second);
  ASSERT_EQ(before.size(), 3u);
  for (const auto& [leaf, values] : before) {
    ASSERT_EQ(after.count(leaf), 1u) << leaf;
    EXPECT_GE(after[leaf][0], values[0]) << leaf;  // alloc_objects
    EXPECT_GE(after[leaf][1], values[1]) << leaf;  // alloc_space
  }
  for (int i = 0; i < 2; ++i) {
    for (const test::RawSample& s : fetch("delta_heap", "delta_heap").samples) {
      EXPECT_GE(s.values[0], 0);
      EXPECT_GE(s.values[1], 0);
    }
  }
}

TEST_F(HttpHeapTest, DeltaHeapCountsAllocationsSinceThePreviousRequest) {
  auto first = values_by_leaf(fetch("delta_heap", "delta_heap"));   // snapshot 1
  auto second = values_by_leaf(fetch("delta_heap", "delta_heap"));  // snapshot 2
  ASSERT_EQ(first.size(), 3u);
  // Every stack still has live objects, so none is left out.
  ASSERT_EQ(second.size(), 3u);
  for (const auto& [leaf, values] : second) {
    if (leaf.find("http_heap_large_site") != std::string::npos) {
      // One more 1 MiB object since the first request; two live.
      EXPECT_EQ(values[0], 1);
      EXPECT_EQ(values[2], 2);
      EXPECT_GT(values[3], values[1]);
    } else if (leaf.find("http_heap_small_site") != std::string::npos) {
      // 10 new objects, as many as the first time; 10 live instead of 5.
      EXPECT_EQ(values[0], first.at(leaf)[0]);
      EXPECT_EQ(values[1], first.at(leaf)[1]);
      EXPECT_GT(values[2], first.at(leaf)[2]);
    } else {
      // The bucket without stack: nothing new, its object still live.
      EXPECT_EQ(values[0], 0) << leaf;
      EXPECT_EQ(values[2], first.at(leaf)[2]) << leaf;
    }
  }
}

TEST_F(HttpHeapTest, SecondsGivesGosDeltaOfAllFourValues) {
  HttpResponse r = get("heap?seconds=1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Disposition"), "attachment; filename=\"heap-delta\"");
  test::RawProfile raw;
  ASSERT_TRUE(test::read_raw(r.body, &raw));
  auto values = values_by_leaf(raw);
  // Snapshots 1 and 2: the synthetic bucket did not change and is gone.
  ASSERT_EQ(values.size(), 2u);
  for (const auto& [leaf, v] : values) {
    if (leaf.find("http_heap_large_site") != std::string::npos) {
      EXPECT_EQ(v[0], 1);
      EXPECT_EQ(v[2], 1);  // one more live 1 MiB object
    } else {
      EXPECT_GT(v[0], 0);
      EXPECT_GT(v[2], 0);  // in use grew by 5 sampled objects
    }
  }
  EXPECT_GE(raw.duration_nanos, 990'000'000);
}

TEST_F(HttpHeapTest, DebugOneIsGosTextWithRawCounts) {
  for (const char* name : {"heap", "allocs"}) {
    HttpResponse r = get(std::string(name) + "?debug=1");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");
    EXPECT_EQ(r.header("Content-Disposition"), "");
    // Snapshot k: 5k+k+1 live of 10k+k+1 sampled.
    const uint64_t k = heap_->taken();
    const std::string header = "heap profile: " + std::to_string(6 * k + 1) + ": " +
                               std::to_string(320 * k + (k << 20) + 100) + " [" +
                               std::to_string(11 * k + 1) + ": " +
                               std::to_string(640 * k + (k << 20) + 100) + "] @ heap/8192\n";
    EXPECT_THAT(r.body, StartsWith(header));
    EXPECT_THAT(r.body, HasSubstr("http_heap_small_site+0x"));
    EXPECT_THAT(r.body, HasSubstr("\n# cpprof.AllocStats\n"));
    EXPECT_THAT(r.body, HasSubstr("\n# MaxRSS = "));
  }
}

TEST_F(HttpHeapTest, IndexListsTheEntriesWithGosWords) {
  HttpResponse r = get("");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("<td class=\"count\">3</td><td><a href='heap?debug=1'>heap</a>"));
  EXPECT_THAT(r.body,
              HasSubstr("<td class=\"count\">3</td><td><a href='allocs?debug=1'>allocs</a>"));
  EXPECT_THAT(r.body, HasSubstr("<a href='delta_heap'>delta_heap</a>"));
  EXPECT_THAT(r.body, HasSubstr("A sampling of all past memory allocations"));
  EXPECT_THAT(r.body, HasSubstr("A sampling of memory allocations of live objects."));
  EXPECT_EQ(heap_->taken(), 0u) << "the index must not take snapshots";
}

TEST_F(HttpHeapTest, UnavailableHeapIs503WithTheReason) {
  heap_->set_off(true);
  for (const char* path : {"heap", "allocs", "delta_heap", "heap?debug=1", "allocs?seconds=1"}) {
    HttpResponse r = get(path);
    EXPECT_EQ(r.status, 503) << path;
    EXPECT_EQ(r.body, "heap profiling is off (CPPROF_HEAP_RATE=0)\n") << path;
  }
  heap_->set_off(false);
  EXPECT_EQ(get("heap").status, 200);
}

}  // namespace
}  // namespace cpprof::api

// A registry of fake profile entries for the HTTP layer's tests: each entry
// returns a small hand-made Profile (one sample in "fake_function") and
// counts how its collections were opened, finished and destroyed, so tests
// can see exactly what the server did with them.
//
// Thread-safe: the counters are atomics; the server calls the entries on
// its own threads.
//
// Header-only on purpose: tests link libcpprof.a before the support library,
// so the support library must not be the one that needs libcpprof's symbols.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

#include "http/registry.h"
#include "profile/profile.h"

namespace cpprof::test {

// What happened to the collections of one entry.
struct FakeCounters {
  std::atomic<int> opened{0};
  std::atomic<int> finished{0};
  std::atomic<int> destroyed{0};
};

// A profile with sample types samples/count and cpu/nanoseconds and one
// sample of `count` in `function` (leaf) called from "fake_main".
inline profile::Profile fake_profile(const std::string& function, int64_t count,
                                     int64_t time_nanos);

struct FakeRegistry {
  std::shared_ptr<http::Registry> registry = std::make_shared<http::Registry>();
  // "profile": a window (default 30 s), like the CPU profile.
  std::shared_ptr<FakeCounters> cpu = std::make_shared<FakeCounters>();
  // "heap": a snapshot with debug=1 text and deltas; the k-th snapshot's
  // sample value is 10*k, so any delta of two consecutive snapshots is 10.
  std::shared_ptr<FakeCounters> heap = std::make_shared<FakeCounters>();
  // "goroutine": a snapshot with debug=1 and 2 but no delta.
  std::shared_ptr<FakeCounters> goroutine = std::make_shared<FakeCounters>();
  // "busy": open() refuses with 503 "sampler busy".
  // "broken": finish() throws std::runtime_error("disk on fire").
  // "big": a snapshot whose encoded profile is several MiB of random bytes.
};

// Builds the registry above.
inline FakeRegistry make_fake_registry();

// Implementation.

namespace fake_detail {

using http::Collection;
using http::Refusal;

inline int64_t now_nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class FakeCollection : public Collection {
 public:
  FakeCollection(std::shared_ptr<FakeCounters> counters, std::function<profile::Profile()> make)
      : counters_(std::move(counters)), make_(std::move(make)) {
    counters_->opened++;
  }
  ~FakeCollection() override { counters_->destroyed++; }
  profile::Profile finish() override {
    counters_->finished++;
    return make_();
  }

 private:
  std::shared_ptr<FakeCounters> counters_;
  std::function<profile::Profile()> make_;
};

inline std::function<std::unique_ptr<Collection>(Refusal*)> opener(
    std::shared_ptr<FakeCounters> counters, std::function<profile::Profile()> make) {
  return [counters, make](Refusal*) -> std::unique_ptr<Collection> {
    return std::make_unique<FakeCollection>(counters, make);
  };
}

}  // namespace fake_detail

inline profile::Profile fake_profile(const std::string& function, int64_t count,
                                     int64_t time_nanos) {
  profile::Profile p;
  p.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  p.period_type = {"cpu", "nanoseconds"};
  p.period = 10'000'000;
  p.time_nanos = time_nanos;
  profile::Mapping mapping;
  mapping.id = 1;
  mapping.memory_start = 0x400000;
  mapping.memory_limit = 0x500000;
  mapping.filename = "/usr/bin/fake";
  mapping.has_functions = true;
  p.mappings.push_back(mapping);
  p.functions.push_back({1, function, function, "fake.cc", 10});
  p.functions.push_back({2, "fake_main", "fake_main", "fake.cc", 1});
  p.locations.push_back({1, 1, 0x401000, {{1, 12}}});
  p.locations.push_back({2, 1, 0x402000, {{2, 3}}});
  p.samples.push_back({{1, 2}, {count, count * p.period}, {}});
  return p;
}

inline FakeRegistry make_fake_registry() {
  using namespace fake_detail;
  FakeRegistry fake;
  http::Registry& registry = *fake.registry;
  using http::ProfileEntry;

  ProfileEntry cpu;
  cpu.name = "profile";
  cpu.description = "Fake CPU profile";
  cpu.default_seconds = 30;
  cpu.open = opener(fake.cpu, [] { return fake_profile("fake_function", 3, now_nanos()); });
  registry.add(std::move(cpu));

  ProfileEntry heap;
  heap.name = "heap";
  heap.description = "Fake heap";
  heap.count = [] { return std::optional<int64_t>(7); };
  heap.text_debug_levels = {1};
  heap.write_text = [](const profile::Profile& p, int debug) {
    return "heap profile debug=" + std::to_string(debug) + ": " + p.functions[0].name + "\n";
  };
  auto snapshots = std::make_shared<std::atomic<int64_t>>(0);
  heap.open = opener(fake.heap, [snapshots] {
    return fake_profile("fake_function", 10 * ++*snapshots, now_nanos());
  });
  heap.delta = [](const profile::Profile& earlier, const profile::Profile& later) {
    profile::Profile d = later;
    for (size_t i = 0; i < d.samples[0].values.size(); ++i) {
      d.samples[0].values[i] -= earlier.samples[0].values[i];
    }
    return d;
  };
  registry.add(std::move(heap));

  ProfileEntry goroutine;
  goroutine.name = "goroutine";
  goroutine.description = "Fake threads";
  goroutine.count = [] { return std::optional<int64_t>(3); };
  goroutine.text_debug_levels = {1, 2};
  goroutine.write_text = [](const profile::Profile&, int debug) {
    return "goroutine debug=" + std::to_string(debug) + "\n";
  };
  goroutine.open =
      opener(fake.goroutine, [] { return fake_profile("fake_thread", 1, now_nanos()); });
  registry.add(std::move(goroutine));

  ProfileEntry busy;
  busy.name = "busy";
  busy.description = "Always refuses";
  busy.open = [](Refusal* refusal) -> std::unique_ptr<Collection> {
    refusal->status = 503;
    refusal->message = "sampler busy";
    return nullptr;
  };
  registry.add(std::move(busy));

  auto ignored = std::make_shared<FakeCounters>();
  ProfileEntry broken;
  broken.name = "broken";
  broken.description = "finish() throws";
  broken.open =
      opener(ignored, []() -> profile::Profile { throw std::runtime_error("disk on fire"); });
  registry.add(std::move(broken));

  ProfileEntry big;
  big.name = "big";
  big.description = "Several MiB";
  big.open = opener(ignored, [] {
    profile::Profile p = fake_profile("fake_function", 1, now_nanos());
    std::mt19937_64 random(42);
    std::string noise(4 << 20, '\0');
    for (char& c : noise) c = static_cast<char>(random());
    p.comments.push_back(std::move(noise));
    return p;
  });
  registry.add(std::move(big));
  return fake;
}

}  // namespace cpprof::test

// cpprof::Pool<T> (cpprof/pool.h): exact counters, bounds, no allocation on
// the per-thread path, reuse across threads, and object lifetimes when
// threads exit and pools die while threads still cache their objects.
#include "cpprof/pool.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cpprof/alloc_stats.h"

namespace {

// An object that knows whether it is alive: every instance has a unique id,
// kept in a live set from construction to destruction. A destructor that
// finds its id missing (a second destruction) counts an error.
class Tracked {
 public:
  explicit Tracked(int made_by = 0) : owner(made_by), id_(next_id().fetch_add(1)) {
    std::lock_guard lock(mu());
    live().insert(id_);
  }
  ~Tracked() {
    std::lock_guard lock(mu());
    if (live().erase(id_) != 1) ++errors();
  }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;

  static std::size_t live_count() {
    std::lock_guard lock(mu());
    return live().size();
  }
  static int error_count() {
    std::lock_guard lock(mu());
    return errors();
  }

  const int owner;                // which pool's factory made it
  int value = 0;                  // written by its current holder
  std::atomic<bool> held{false};  // set while a caller holds it

 private:
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static std::set<uint64_t>& live() {
    static std::set<uint64_t> s;
    return s;
  }
  static int& errors() {
    static int e = 0;
    return e;
  }
  static std::atomic<uint64_t>& next_id() {
    static std::atomic<uint64_t> n{0};
    return n;
  }
  const uint64_t id_;
};

using TrackedPool = cpprof::Pool<Tracked>;

TrackedPool::Options bounds(std::size_t per_thread, std::size_t shared, int owner = 0) {
  return {.per_thread = per_thread, .shared = shared, .make = [owner] {
            return std::make_unique<Tracked>(owner);
          }};
}

void expect_stats(const cpprof::PoolStats& s, uint64_t hits, uint64_t misses, uint64_t puts,
                  uint64_t dropped) {
  EXPECT_EQ(s.hits, hits);
  EXPECT_EQ(s.misses, misses);
  EXPECT_EQ(s.puts, puts);
  EXPECT_EQ(s.dropped, dropped);
}

// Every test starts and must end with no Tracked alive and no error.
class PoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(Tracked::live_count(), 0u);
    errors_before_ = Tracked::error_count();
  }
  void TearDown() override {
    EXPECT_EQ(Tracked::live_count(), 0u) << "objects leaked";
    EXPECT_EQ(Tracked::error_count(), errors_before_) << "objects destroyed twice";
  }
  int errors_before_ = 0;
};

TEST_F(PoolTest, CountsHitsMissesPutsExactlyOnOneThread) {
  TrackedPool pool(bounds(8, 64));
  auto a = pool.get();  // miss
  Tracked* const a_raw = a.get();
  pool.put(std::move(a));
  auto b = pool.get();  // hit: the same object
  EXPECT_EQ(b.get(), a_raw);
  auto c = pool.get();  // miss: nothing kept
  EXPECT_NE(c.get(), a_raw);
  Tracked* const c_raw = c.get();
  pool.put(std::move(b));
  pool.put(std::move(c));
  pool.put(nullptr);  // ignored
  expect_stats(pool.stats(), 1, 2, 3, 0);
  // Last in, first out.
  auto d = pool.get();
  auto e = pool.get();
  EXPECT_EQ(d.get(), c_raw);
  EXPECT_EQ(e.get(), a_raw);
  expect_stats(pool.stats(), 3, 2, 3, 0);
  EXPECT_EQ(Tracked::live_count(), 2u);
}

TEST_F(PoolTest, KeepsAtMostPerThreadPlusSharedAndDropsTheRest) {
  TrackedPool pool(bounds(2, 3));
  for (int i = 0; i < 10; ++i) pool.put(std::make_unique<Tracked>());
  expect_stats(pool.stats(), 0, 0, 10, 5);
  EXPECT_EQ(Tracked::live_count(), 5u);  // 2 in this thread's slot, 3 in the shared list
  std::vector<std::unique_ptr<Tracked>> held;
  for (int i = 0; i < 6; ++i) held.push_back(pool.get());
  expect_stats(pool.stats(), 5, 1, 10, 5);
  EXPECT_EQ(Tracked::live_count(), 6u);
}

TEST_F(PoolTest, WithBothBoundsZeroKeepsNothing) {
  TrackedPool pool(bounds(0, 0));
  pool.put(std::make_unique<Tracked>());
  EXPECT_EQ(Tracked::live_count(), 0u);
  auto a = pool.get();
  expect_stats(pool.stats(), 0, 1, 1, 1);
}

TEST_F(PoolTest, OversizedPerThreadBoundIsCappedAt256) {
  TrackedPool pool(bounds(100000, 0));
  for (int i = 0; i < 300; ++i) pool.put(std::make_unique<Tracked>());
  expect_stats(pool.stats(), 0, 0, 300, 44);
}

struct Blob {
  char bytes[64];
};

// Keeps the compiler from removing an allocation whose result is unused.
void escape(void* ptr) { asm volatile("" : : "g"(ptr) : "memory"); }

TEST(Pool, GetAndPutOnOneThreadDoNotAllocateOnceWarm) {
  if (!cpprof::alloc_counting_available()) GTEST_SKIP() << "allocations are not counted here";
  // The counting sees what the pool saves: a new object is one allocation.
  EXPECT_EQ(cpprof::allocs_per_run(100,
                                   [] {
                                     auto p = std::make_unique<Blob>();
                                     escape(p.get());
                                   }),
            1);
  cpprof::Pool<Blob> pool;
  EXPECT_EQ(cpprof::allocs_per_run(100,
                                   [&] {
                                     auto p = pool.get();
                                     escape(p.get());
                                     pool.put(std::move(p));
                                   }),
            0);
  const cpprof::PoolStats s = pool.stats();
  EXPECT_EQ(s.misses, 1u);  // the warm-up call
  EXPECT_EQ(s.hits, 100u);
}

TEST(Pool, SharedListPathDoesNotAllocateEither) {
  if (!cpprof::alloc_counting_available()) GTEST_SKIP() << "allocations are not counted here";
  cpprof::Pool<Blob> pool({.per_thread = 0, .shared = 4});
  EXPECT_EQ(cpprof::allocs_per_run(100,
                                   [&] {
                                     auto p = pool.get();
                                     escape(p.get());
                                     pool.put(std::move(p));
                                   }),
            0);
  EXPECT_EQ(pool.stats().hits, 100u);
}

TEST(Pool, FirstUseOnAFreshThreadDoesNotAllocateAfterWarmUp) {
  if (!cpprof::alloc_counting_available()) GTEST_SKIP() << "allocations are not counted here";
  cpprof::Pool<Blob> pool;
  double allocs = -1;
  std::thread([&] {
    allocs = cpprof::allocs_per_run(100, [&] {
      auto p = pool.get();
      escape(p.get());
      pool.put(std::move(p));
    });
  }).join();
  EXPECT_EQ(allocs, 0);
}

TEST_F(PoolTest, ObjectsPutOnOneThreadAreGottenOnAnotherThroughTheSharedList) {
  TrackedPool pool(bounds(2, 8));
  std::set<Tracked*> from_worker;
  std::promise<void> worker_done_putting;
  std::promise<void> main_done_getting;
  std::thread worker([&] {
    std::vector<std::unique_ptr<Tracked>> made;
    for (int i = 0; i < 5; ++i) made.push_back(pool.get());
    for (auto& object : made) {
      from_worker.insert(object.get());
      pool.put(std::move(object));  // 2 stay in the worker's slot, 3 go to the shared list
    }
    worker_done_putting.set_value();
    main_done_getting.get_future().wait();
  });
  worker_done_putting.get_future().wait();

  std::vector<std::unique_ptr<Tracked>> got;
  for (int i = 0; i < 3; ++i) {
    got.push_back(pool.get());
    EXPECT_EQ(from_worker.count(got.back().get()), 1u);
  }
  got.push_back(pool.get());  // the worker's slot is out of reach while it runs
  EXPECT_EQ(from_worker.count(got.back().get()), 0u);
  expect_stats(pool.stats(), 3, 6, 5, 0);

  main_done_getting.set_value();
  worker.join();  // hands its 2 remaining objects to the shared list
  for (int i = 0; i < 2; ++i) {
    got.push_back(pool.get());
    EXPECT_EQ(from_worker.count(got.back().get()), 1u);
  }
  expect_stats(pool.stats(), 5, 6, 5, 0);
}

TEST_F(PoolTest, ExitingThreadHandsWhatFitsToTheSharedListAndTheRestStaysWithItsIndex) {
  TrackedPool pool(bounds(4, 1));
  auto fill_and_exit = [&] {
    std::thread([&] {
      std::vector<std::unique_ptr<Tracked>> made;
      for (int i = 0; i < 4; ++i) made.push_back(pool.get());
      for (auto& object : made) pool.put(std::move(object));
    }).join();
  };
  fill_and_exit();
  expect_stats(pool.stats(), 0, 4, 4, 0);
  EXPECT_EQ(Tracked::live_count(), 4u);  // none destroyed at thread exit

  auto first = pool.get();   // the one that fit in the shared list
  auto second = pool.get();  // the other 3 wait in the exited thread's slot
  expect_stats(pool.stats(), 1, 5, 4, 0);

  // The next thread to put into a pool takes the lowest free index, which
  // is the exited thread's: it finds the 3 objects kept there.
  uint64_t hits_before = pool.stats().hits;
  std::thread([&] {
    pool.put(std::make_unique<Tracked>());  // takes the index: 4 in its slot now
    std::vector<std::unique_ptr<Tracked>> got;
    for (int i = 0; i < 4; ++i) got.push_back(pool.get());
  }).join();
  EXPECT_EQ(pool.stats().hits - hits_before, 4u);
}

TEST_F(PoolTest, DestroyedWhileARunningThreadCachesItsObjectsFreesEachOnce) {
  auto pool = std::make_unique<TrackedPool>(bounds(4, 0));
  std::promise<void> cached;
  std::promise<void> pool_destroyed;
  std::promise<TrackedPool*> second_pool;
  cpprof::PoolStats second_stats_in_worker;
  std::thread worker([&] {
    std::vector<std::unique_ptr<Tracked>> made;
    for (int i = 0; i < 3; ++i) made.push_back(pool->get());
    for (auto& object : made) pool->put(std::move(object));
    cached.set_value();
    pool_destroyed.get_future().wait();
    // A pool made after the first died (perhaps at its address) must not
    // see the first's cache.
    TrackedPool* other = second_pool.get_future().get();
    auto object = other->get();
    second_stats_in_worker = other->stats();
    other->put(std::move(object));
  });  // exits after the first pool is gone: its exit must not touch it

  cached.get_future().wait();
  EXPECT_EQ(Tracked::live_count(), 3u);
  pool.reset();
  EXPECT_EQ(Tracked::live_count(), 0u);
  EXPECT_EQ(Tracked::error_count(), errors_before_);
  pool_destroyed.set_value();

  auto other = std::make_unique<TrackedPool>(bounds(4, 4));
  second_pool.set_value(other.get());
  worker.join();
  expect_stats(second_stats_in_worker, 0, 1, 0, 0);
  EXPECT_EQ(Tracked::live_count(), 1u);  // handed to the second pool's shared list
  auto back = other->get();
  expect_stats(other->stats(), 1, 1, 1, 0);
}

TEST_F(PoolTest, ManyPoolsOfOneTypeKeepTheirObjectsApart) {
  std::vector<std::unique_ptr<TrackedPool>> pools;
  for (int owner = 0; owner < 3; ++owner) {
    pools.push_back(std::make_unique<TrackedPool>(bounds(4, 4, owner)));
  }
  for (int owner = 0; owner < 3; ++owner) {
    for (int i = 0; i < 2; ++i) pools[owner]->put(pools[owner]->get());
  }
  for (int owner = 0; owner < 3; ++owner) {
    // Round one above: a miss, then a hit on the object just put back.
    // Now: that object (a hit), then two misses; none is put back.
    for (int i = 0; i < 3; ++i) {
      auto object = pools[owner]->get();
      EXPECT_EQ(object->owner, owner);
    }
    expect_stats(pools[owner]->stats(), 2, 3, 2, 0);
  }
  // Destroying a pool destroys its objects and leaves the others' alone.
  auto kept_by_2 = std::make_unique<Tracked>(2);
  Tracked* const kept_raw = kept_by_2.get();
  pools[2]->put(std::move(kept_by_2));
  for (int i = 0; i < 2; ++i) pools[1]->put(std::make_unique<Tracked>(1));
  EXPECT_EQ(Tracked::live_count(), 3u);
  pools[1].reset();
  EXPECT_EQ(Tracked::live_count(), 1u);
  auto back = pools[2]->get();
  EXPECT_EQ(back.get(), kept_raw);
}

TEST_F(PoolTest, LeasePutsBackWhenItEndsAndReleaseKeepsTheObject) {
  TrackedPool pool(bounds(4, 0));
  Tracked* first = nullptr;
  {
    auto lease = pool.lease();
    ASSERT_TRUE(lease);
    first = lease.get();
    lease->value = 7;
    EXPECT_EQ((*lease).value, 7);
  }
  expect_stats(pool.stats(), 0, 1, 1, 0);
  {
    auto lease = pool.lease();
    EXPECT_EQ(lease.get(), first);  // no reset: the state is what it was
    EXPECT_EQ(lease->value, 7);
    TrackedPool::Lease moved = std::move(lease);
    EXPECT_FALSE(lease);  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_EQ(moved.get(), first);
    moved = pool.lease();  // a miss (`first` is held), then puts `first` back
    expect_stats(pool.stats(), 1, 2, 2, 0);
  }
  expect_stats(pool.stats(), 1, 2, 3, 0);
  std::unique_ptr<Tracked> taken;
  {
    auto lease = pool.lease();
    taken = lease.release();
    EXPECT_FALSE(lease);
  }
  expect_stats(pool.stats(), 2, 2, 3, 0);  // released: not put back
  EXPECT_NE(taken, nullptr);
}

TEST_F(PoolTest, ResetRunsOnEveryObjectPutAndTheFactoryOnEveryMiss) {
  int made = 0;
  int resets = 0;
  TrackedPool pool({.per_thread = 1,
                    .shared = 0,
                    .make =
                        [&] {
                          ++made;
                          return std::make_unique<Tracked>(42);
                        },
                    .reset =
                        [&](Tracked& t) {
                          ++resets;
                          t.value = 0;
                        }});
  auto a = pool.get();
  auto b = pool.get();
  EXPECT_EQ(a->owner, 42);
  a->value = 5;
  b->value = 6;
  pool.put(std::move(a));
  pool.put(std::move(b));  // dropped, reset all the same
  auto c = pool.get();
  EXPECT_EQ(c->value, 0);
  EXPECT_EQ(made, 2);
  EXPECT_EQ(resets, 2);
  expect_stats(pool.stats(), 1, 2, 2, 1);
}

struct NoDefault {
  explicit NoDefault(int v) : value(v) {}
  int value;
};

TEST(Pool, TypeWithoutDefaultConstructorNeedsAFactory) {
  EXPECT_THROW(cpprof::Pool<NoDefault>{}, std::invalid_argument);
  cpprof::Pool<NoDefault> pool({.make = [] { return std::make_unique<NoDefault>(3); }});
  EXPECT_EQ(pool.get()->value, 3);
}

// 4 threads, 3 pools, a fixed pseudo-random sequence of gets and puts each,
// with small bounds so that objects overflow into the shared lists, are
// dropped and move between threads. Checks that no object is held by two
// callers at once, that objects stay with their pool, and the counters.
TEST_F(PoolTest, FourThreadsOnThreePoolsKeepEveryInvariant) {
  constexpr int kThreads = 4;
  constexpr int kPools = 3;
  constexpr int kSteps = 20000;
  std::vector<std::unique_ptr<TrackedPool>> pools;
  for (int p = 0; p < kPools; ++p) pools.push_back(std::make_unique<TrackedPool>(bounds(2, 4, p)));
  std::array<std::array<uint64_t, kPools>, kThreads> gets{};
  std::array<std::array<uint64_t, kPools>, kThreads> puts{};
  std::atomic<int> violations{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint32_t rng = 12345u + static_cast<uint32_t>(t);
      std::array<std::vector<std::unique_ptr<Tracked>>, kPools> held;
      for (int step = 0; step < kSteps; ++step) {
        rng = rng * 1664525u + 1013904223u;
        const int p = static_cast<int>((rng >> 8) % kPools);
        const bool take = held[p].empty() || (held[p].size() < 3 && ((rng >> 20) & 1));
        if (take) {
          auto object = pools[p]->get();
          ++gets[t][p];
          if (object->owner != p || object->held.exchange(true)) ++violations;
          object->value = t;
          held[p].push_back(std::move(object));
        } else {
          auto object = std::move(held[p].back());
          held[p].pop_back();
          if (object->value != t) ++violations;  // someone else wrote to it
          object->held.store(false);
          pools[p]->put(std::move(object));
          ++puts[t][p];
        }
      }
      for (int p = 0; p < kPools; ++p) {
        for (auto& object : held[p]) {
          object->held.store(false);
          pools[p]->put(std::move(object));
          ++puts[t][p];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(violations.load(), 0);
  for (int p = 0; p < kPools; ++p) {
    uint64_t total_gets = 0;
    uint64_t total_puts = 0;
    for (int t = 0; t < kThreads; ++t) {
      total_gets += gets[t][p];
      total_puts += puts[t][p];
    }
    const cpprof::PoolStats s = pools[p]->stats();
    EXPECT_EQ(s.hits + s.misses, total_gets);
    EXPECT_EQ(s.puts, total_puts);
    EXPECT_EQ(total_gets, total_puts);  // every object got was put back
    EXPECT_GT(s.hits, 0u);
    // What is alive is what the pool kept: every miss made one, every drop
    // destroyed one.
    EXPECT_LE(s.misses - s.dropped, 2u * kThreads + 4u);
  }
  uint64_t kept = 0;
  for (auto& pool : pools) kept += pool->stats().misses - pool->stats().dropped;
  EXPECT_EQ(Tracked::live_count(), kept);
  pools.clear();
}

}  // namespace

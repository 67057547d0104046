#include "capture/sample_ring.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

namespace cpprof::capture {
namespace {

RawSample sample_with(int tid, uint64_t first_frame, uint32_t depth) {
  RawSample s;
  s.tid = tid;
  s.depth = depth;
  s.weight = 1;
  for (uint32_t i = 0; i < depth; ++i) s.frames[i] = first_frame + i;
  return s;
}

TEST(SampleRing, PopsWhatWasPushedInOrder) {
  SampleRing ring;
  ASSERT_TRUE(ring.reserve(8));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ring.push(sample_with(i, 100 * i, 3)));
  for (int i = 0; i < 5; ++i) {
    RawSample out;
    ASSERT_TRUE(ring.pop(&out));
    EXPECT_EQ(out.tid, i);
    EXPECT_EQ(out.depth, 3u);
    EXPECT_EQ(out.frames[2], static_cast<uint64_t>(100 * i + 2));
  }
  RawSample out;
  EXPECT_FALSE(ring.pop(&out));
}

TEST(SampleRing, DropsAndCountsWhenFullInsteadOfWaiting) {
  SampleRing ring;
  ASSERT_TRUE(ring.reserve(4));
  ASSERT_EQ(ring.capacity(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(ring.push(sample_with(i, 0, 1)));
  EXPECT_FALSE(ring.push(sample_with(9, 0, 1)));
  EXPECT_FALSE(ring.push(sample_with(9, 0, 1)));
  EXPECT_EQ(ring.dropped(), 2u);
  EXPECT_EQ(ring.pushed(), 4u);
  RawSample out;
  ASSERT_TRUE(ring.pop(&out));
  EXPECT_TRUE(ring.push(sample_with(5, 0, 1)));  // room again after a pop
}

TEST(SampleRing, PushWithoutReserveDropsSafely) {
  SampleRing ring;
  EXPECT_FALSE(ring.push(sample_with(1, 0, 1)));
  EXPECT_EQ(ring.dropped(), 1u);
  RawSample out;
  EXPECT_FALSE(ring.pop(&out));
}

TEST(SampleRing, ManyProducersLoseNothingThatWasAccepted) {
  SampleRing ring;
  ASSERT_TRUE(ring.reserve(1024));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::atomic<bool> done{false};
  std::set<std::pair<int, uint64_t>> seen;
  std::thread consumer([&] {
    RawSample out;
    for (;;) {
      bool got = ring.pop(&out);
      if (got) {
        EXPECT_EQ(out.frames[out.depth - 1], out.frames[0] + out.depth - 1);  // not torn
        seen.insert({out.tid, out.frames[0]});
      } else if (done.load()) {
        if (!ring.pop(&out)) break;
        seen.insert({out.tid, out.frames[0]});
      }
    }
  });
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&ring, t] {
      for (int i = 0; i < kPerThread; ++i) ring.push(sample_with(t, i * 1000, 1 + i % 20));
    });
  }
  for (auto& p : producers) p.join();
  done = true;
  consumer.join();
  EXPECT_EQ(ring.pushed() + ring.dropped(), static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(seen.size(), ring.pushed());
}

}  // namespace
}  // namespace cpprof::capture

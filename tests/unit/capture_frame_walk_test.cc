#include "capture/frame_walk.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <cstdint>
#include <vector>

namespace cpprof::capture {
namespace {

// A fake stack: frame records laid out as the x86-64 ABI does, upwards.
struct FakeStack {
  std::vector<uintptr_t> words = std::vector<uintptr_t>(64, 0);
  uintptr_t at(size_t i) { return reinterpret_cast<uintptr_t>(&words[i]); }
  uintptr_t lo() { return at(0); }
  uintptr_t hi() { return at(0) + words.size() * sizeof(uintptr_t); }
};

TEST(FrameWalk, FollowsTheChainUpwardsAndRecordsReturnAddresses) {
  FakeStack s;
  // Records at words 10, 20, 30: [saved fp, return address].
  s.words[10] = s.at(20);
  s.words[11] = 0x1111;
  s.words[20] = s.at(30);
  s.words[21] = 0x2222;
  s.words[30] = 0;  // outermost frame
  s.words[31] = 0x3333;
  MachineState state{.pc = 0xabc, .sp = s.at(4), .fp = s.at(10)};
  uint64_t frames[16];
  size_t n = walk_frame_pointers(state, s.lo(), s.hi(), frames, 16);
  ASSERT_EQ(n, 4u);
  EXPECT_EQ(frames[0], 0xabcu);
  EXPECT_EQ(frames[1], 0x1111u);
  EXPECT_EQ(frames[2], 0x2222u);
  EXPECT_EQ(frames[3], 0x3333u);
}

TEST(FrameWalk, StopsAtAFramePointerOutsideTheStack) {
  FakeStack s;
  s.words[10] = 0x10;  // garbage: points far below the stack
  s.words[11] = 0x1111;
  MachineState state{.pc = 0xabc, .sp = s.at(4), .fp = s.at(10)};
  uint64_t frames[16];
  EXPECT_EQ(walk_frame_pointers(state, s.lo(), s.hi(), frames, 16), 2u);
}

TEST(FrameWalk, StopsWhenTheChainDoesNotGrowUpwards) {
  FakeStack s;
  s.words[10] = s.at(10);  // a loop
  s.words[11] = 0x1111;
  MachineState state{.pc = 0xabc, .sp = s.at(4), .fp = s.at(10)};
  uint64_t frames[16];
  EXPECT_EQ(walk_frame_pointers(state, s.lo(), s.hi(), frames, 16), 2u);
}

TEST(FrameWalk, NeverReadsBelowTheStackPointerOrPastTheTop) {
  FakeStack s;
  MachineState below{.pc = 1, .sp = s.at(20), .fp = s.at(10)};  // fp below sp
  uint64_t frames[16];
  EXPECT_EQ(walk_frame_pointers(below, s.lo(), s.hi(), frames, 16), 1u);
  MachineState top{.pc = 1, .sp = s.at(4), .fp = s.hi() - sizeof(uintptr_t)};  // half a record
  EXPECT_EQ(walk_frame_pointers(top, s.lo(), s.hi(), frames, 16), 1u);
  MachineState misaligned{.pc = 1, .sp = s.at(4), .fp = s.at(10) + 3};
  EXPECT_EQ(walk_frame_pointers(misaligned, s.lo(), s.hi(), frames, 16), 1u);
}

TEST(FrameWalk, UnknownBoundsGiveOnlyThePc) {
  MachineState state{.pc = 0xabc, .sp = 0x1000, .fp = 0x2000};
  uint64_t frames[4];
  ASSERT_EQ(walk_frame_pointers(state, 0, 0, frames, 4), 1u);
  EXPECT_EQ(frames[0], 0xabcu);
}

TEST(FrameWalk, RespectsTheFrameLimit) {
  FakeStack s;
  for (size_t i = 2; i + 3 < s.words.size(); i += 2) {
    s.words[i] = s.at(i + 2);
    s.words[i + 1] = 0x1000 + i;
  }
  MachineState state{.pc = 1, .sp = s.at(0), .fp = s.at(2)};
  uint64_t frames[5];
  EXPECT_EQ(walk_frame_pointers(state, s.lo(), s.hi(), frames, 5), 5u);
}

// The real thing: our own frame chain (this code is built with frame pointers).
[[gnu::noinline]] size_t walk_here(uint64_t* frames, size_t max) {
  MachineState state;
  state.pc = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  state.fp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  state.sp = state.fp;
  pthread_attr_t attr;
  void* stack = nullptr;
  size_t size = 0;
  pthread_getattr_np(pthread_self(), &attr);
  pthread_attr_getstack(&attr, &stack, &size);
  pthread_attr_destroy(&attr);
  uintptr_t lo = reinterpret_cast<uintptr_t>(stack);
  return walk_frame_pointers(state, lo, lo + size, frames, max);
}
[[gnu::noinline]] size_t middle(uint64_t* frames, size_t max) {
  size_t n = walk_here(frames, max);
  asm volatile("");  // keep this a real call, not a tail call
  return n;
}

TEST(FrameWalk, WalksARealStack) {
  uint64_t frames[32];
  size_t n = middle(frames, 32);
  EXPECT_GE(n, 3u);
}

}  // namespace
}  // namespace cpprof::capture

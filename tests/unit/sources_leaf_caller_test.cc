#include "sources/cpu/leaf_caller.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "symbolize/symbolizer.h"

// A frameless leaf, as GCC emits for leaves and as all of glibc looks.
extern "C" int cpprof_test_frameless_leaf(int);
asm(R"(
  .text
  .globl cpprof_test_frameless_leaf
  .type cpprof_test_frameless_leaf, @function
cpprof_test_frameless_leaf:
  lea 1(%rdi), %eax
  add %eax, %eax
  ret
  .size cpprof_test_frameless_leaf, .-cpprof_test_frameless_leaf
)");

namespace cpprof::sources {
namespace {

uint64_t g_return_address = 0;

[[gnu::noinline]] void remember_return_address() {
  g_return_address = reinterpret_cast<uint64_t>(__builtin_return_address(0));
  asm volatile("");
}

// A framed function; the address after its call is a real return address.
[[gnu::noinline]] int framed_caller(int x) {
  remember_return_address();
  return cpprof_test_frameless_leaf(x) + 1;
}

class LeafCallerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    framed_caller(1);
    ASSERT_NE(g_return_address, 0u);
    leaf_ = reinterpret_cast<uint64_t>(&cpprof_test_frameless_leaf);
  }
  symbolize::Symbolizer symbolizer_;
  uint64_t leaf_ = 0;
};

TEST_F(LeafCallerTest, PutsBackTheCallerOfAFramelessLeaf) {
  LeafCaller finder(symbolizer_);
  uint64_t top[2] = {g_return_address, 0};
  EXPECT_EQ(finder.find(leaf_ + 4, /*chain_first=*/0x1234, top), g_return_address);
}

TEST_F(LeafCallerTest, RefusesWordsThatAreNotReturnAddresses) {
  LeafCaller finder(symbolizer_);
  uint64_t garbage[2] = {42, 0x7fff00001234};
  EXPECT_EQ(finder.find(leaf_ + 4, 0x1234, garbage), 0u);
  // Already the first entry of the frame chain: nothing to add.
  uint64_t same[2] = {g_return_address, 0};
  EXPECT_EQ(finder.find(leaf_ + 4, g_return_address, same), 0u);
  // An address inside the sampled function itself is a stale word.
  uint64_t inside[2] = {leaf_ + 3, 0};
  EXPECT_EQ(finder.find(leaf_ + 4, 0x1234, inside), 0u);
}

TEST_F(LeafCallerTest, LeavesFramedFunctionsToTheChain) {
  LeafCaller finder(symbolizer_);
  uint64_t framed = reinterpret_cast<uint64_t>(&framed_caller);
  uint64_t top[2] = {g_return_address, g_return_address};
  // Well past the prologue, the frame record exists and the chain is right.
  EXPECT_EQ(finder.find(framed + 16, 0x1234, top), 0u);
}

}  // namespace
}  // namespace cpprof::sources

// LeafCaller: recovers the caller of a sampled function that had not set up
// its frame, which a frame-pointer walk skips.
//
// When the signal lands in a function without a frame record (a leaf that
// GCC compiled without one, any function of glibc, or the first two
// instructions of a framed function), RBP still points at the caller's
// frame, so the chain yields the caller's caller. The handler therefore
// keeps the two words at SP; here, off the hot path, with the function's
// start and code at hand, we decide which of them (if any) is the missing
// return address: it must point just after a call instruction, into a
// different function, and not repeat the chain's first entry.
//
// Not thread-safe: one per aggregating thread. Caches per PC and per
// address, so a hot PC costs hash look-ups only, no memory reads.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "symbolize/symbolizer.h"

namespace cpprof::sources {

class LeafCaller {
 public:
  explicit LeafCaller(symbolize::Symbolizer& symbolizer) : symbolizer_(symbolizer) {}

  // The return address to insert between the sampled PC and `chain_first`
  // (the first return address of the frame chain, 0 if none), or 0.
  uint64_t find(uint64_t pc, uint64_t chain_first, const uint64_t stack_top[2]);

 private:
  struct FunctionShape {
    uint64_t start = 0;   // 0: unknown function
    int push_offset = 0;  // offset of `push %rbp` (4 after endbr64)
    bool framed = false;  // begins with push %rbp; mov %rsp,%rbp
    bool at_ret = false;  // the sampled PC itself is a `ret`
  };

  const FunctionShape& shape_of(uint64_t pc);
  uint64_t function_start(uint64_t address);
  bool follows_call(uint64_t address);
  bool is_return_address(uint64_t address, uint64_t current_function);

  symbolize::Symbolizer& symbolizer_;
  std::unordered_map<uint64_t, FunctionShape> shapes_;
  std::unordered_map<uint64_t, uint64_t> starts_;
  std::unordered_map<uint64_t, bool> follows_call_;
};

// Copies `size` bytes of this process's memory at `address` without faulting
// (the code may be unmapped by a dlclose meanwhile). False if unreadable.
bool read_own_memory(uint64_t address, void* out, size_t size);

}  // namespace cpprof::sources

#include "sources/cpu/leaf_caller.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

namespace cpprof::sources {
namespace {

constexpr uint8_t kEndbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};
constexpr uint8_t kPushRbp = 0x55;
constexpr uint8_t kMovRspRbp[3] = {0x48, 0x89, 0xe5};
constexpr uint8_t kRet = 0xc3;

// True if the 8 bytes `b`, which end where `after` points, end with an
// indirect call instruction (opcode 0xff /2, with the common addressing forms).
bool ends_with_indirect_call(const uint8_t* b) {
  if (b[6] == 0xff && ((b[7] & 0xf8) == 0xd0 || (b[7] & 0xf8) == 0x10)) return true;  // *%r, *(%r)
  if (b[5] == 0xff && (b[6] & 0xf8) == 0x50) return true;                    // *disp8(%reg)
  if (b[4] == 0xff && b[5] == 0x54) return true;                             // *disp8(SIB)
  if (b[2] == 0xff && (b[3] == 0x15 || (b[3] & 0xf8) == 0x90)) return true;  // *disp32(...)
  if (b[1] == 0xff && b[2] == 0x94) return true;                             // *disp32(SIB)
  return false;
}

}  // namespace

bool read_own_memory(uint64_t address, void* out, size_t size) {
  iovec local{out, size};
  iovec remote{reinterpret_cast<void*>(address), size};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
}

uint64_t LeafCaller::function_start(uint64_t address) {
  auto it = starts_.find(address);
  if (it != starts_.end()) return it->second;
  uint64_t start = symbolizer_.function_start(address);  // ELF only: no DWARF on the drain
  starts_.emplace(address, start);
  return start;
}

const LeafCaller::FunctionShape& LeafCaller::shape_of(uint64_t pc) {
  auto it = shapes_.find(pc);
  if (it != shapes_.end()) return it->second;
  FunctionShape shape;
  shape.start = function_start(pc);
  uint8_t code[8] = {};
  if (shape.start != 0 && read_own_memory(shape.start, code, sizeof(code))) {
    shape.push_offset = std::memcmp(code, kEndbr64, 4) == 0 ? 4 : 0;
    shape.framed = code[shape.push_offset] == kPushRbp &&
                   std::memcmp(code + shape.push_offset + 1, kMovRspRbp, 3) == 0;
  } else {
    shape.start = 0;
  }
  uint8_t at_pc = 0;
  shape.at_ret = read_own_memory(pc, &at_pc, 1) && at_pc == kRet;
  return shapes_.emplace(pc, shape).first->second;
}

bool LeafCaller::follows_call(uint64_t address) {
  auto it = follows_call_.find(address);
  if (it != follows_call_.end()) return it->second;
  bool call = false;
  uint8_t before[8];
  if (address >= 8 && read_own_memory(address - 8, before, sizeof(before))) {
    call = ends_with_indirect_call(before);
    if (!call && before[3] == 0xe8) {  // call rel32: its target must be code
      int32_t rel = 0;
      std::memcpy(&rel, before + 4, sizeof(rel));
      symbolize::Mapping target;
      call = symbolizer_.find_mapping(address + static_cast<int64_t>(rel), &target);
    }
  }
  follows_call_.emplace(address, call);
  return call;
}

bool LeafCaller::is_return_address(uint64_t address, uint64_t current_function) {
  if (!follows_call(address)) return false;
  // A stale return address left by a call the sampled function made earlier
  // points back into the sampled function itself.
  uint64_t start = function_start(address - 1);
  return start != 0 && start != current_function;
}

uint64_t LeafCaller::find(uint64_t pc, uint64_t chain_first, const uint64_t stack_top[2]) {
  // Stack words are arbitrary values: keep the caches from growing forever.
  constexpr size_t kMaxCached = 1 << 18;
  if (shapes_.size() + starts_.size() + follows_call_.size() > kMaxCached) {
    shapes_.clear();
    starts_.clear();
    follows_call_.clear();
  }
  const FunctionShape& shape = shape_of(pc);
  if (shape.start == 0) return 0;
  auto pick = [&](uint64_t candidate) -> uint64_t {
    if (candidate == 0 || candidate == chain_first) return 0;
    return is_return_address(candidate, shape.start) ? candidate : 0;
  };
  if (shape.at_ret) return pick(stack_top[0]);
  if (shape.framed) {
    uint64_t offset = pc - shape.start;
    if (offset <= static_cast<uint64_t>(shape.push_offset)) return pick(stack_top[0]);
    if (offset == static_cast<uint64_t>(shape.push_offset) + 1) return pick(stack_top[1]);
    return 0;  // the frame record exists: the chain is right
  }
  if (uint64_t caller = pick(stack_top[0])) return caller;
  return pick(stack_top[1]);
}

}  // namespace cpprof::sources

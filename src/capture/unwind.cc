#include "capture/unwind.h"

#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "capture/signal_safe.h"

namespace cpprof::capture {
namespace {

std::atomic<const UnwindIndex*> g_index{nullptr};
std::atomic<uint32_t> g_epoch{0};
std::atomic<uint32_t> g_readers[2];

const UnwindObject* find_object(const UnwindIndex& index, uintptr_t pc) {
  size_t lo = 0;
  size_t hi = index.count;
  while (lo < hi) {  // the first object starting above pc
    size_t mid = lo + (hi - lo) / 2;
    if (index.objects[mid].start <= pc) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return nullptr;
  const UnwindObject* object = &index.objects[lo - 1];
  return pc < object->limit ? object : nullptr;
}

// Waits until no walk counted under `parity` is running; false on timeout.
bool wait_for_readers(uint32_t parity, int64_t deadline_ns) {
  while (g_readers[parity].load(std::memory_order_seq_cst) != 0) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec * 1000000000LL + now.tv_nsec > deadline_ns) return false;
    timespec pause{0, 100000};  // handlers take microseconds
    nanosleep(&pause, nullptr);
  }
  return true;
}

// Reads the stack word at `address`, which the walk has bounds-checked;
// `delta` moves the read into a copy of the stack (0: the stack itself).
CPPROF_READS_RAW_STACK uintptr_t read_word(uintptr_t address, uintptr_t delta) {
  return *reinterpret_cast<const uintptr_t*>(address + delta);
}

// Reads `size` bytes of this process's memory at `address` with
// process_vm_readv: an address unmapped meanwhile is a failed read, not a
// fault.
bool read_code(uintptr_t address, void* into, size_t size) {
  iovec local{into, size};
  iovec remote{reinterpret_cast<void*>(address), size};
  return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0) ==
         static_cast<long>(size);
}

// How well the code before `ra` fits a call into the function holding `pc`.
enum class CallFit {
  kNone,      // not a call instruction
  kPossible,  // an indirect call (FF /2): any target
  kDirect,    // a direct call to code near `pc`, or through a PLT stub to it
};

// Where a PLT stub at `stub` jumps (its GOT entry's value), or 0 if `stub`
// is not one: "jmp *disp32(%rip)", possibly after endbr64 and a bnd prefix.
uintptr_t plt_destination(uintptr_t stub) {
  unsigned char code[11] = {};
  if (!read_code(stub, code, sizeof code)) return 0;
  size_t at = 0;
  if (code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e && code[3] == 0xfa) at = 4;
  if (code[at] == 0xf2) ++at;  // bnd
  if (code[at] != 0xff || code[at + 1] != 0x25) return 0;
  int32_t disp = 0;
  for (int i = 3; i >= 0; --i) {
    disp = static_cast<int32_t>((static_cast<uint32_t>(disp) << 8) | code[at + 2 + i]);
  }
  const uintptr_t got = stub + at + 6 + static_cast<intptr_t>(disp);
  uintptr_t destination = 0;
  return read_code(got, &destination, sizeof destination) ? destination : 0;
}

CallFit call_fit(uintptr_t ra, uintptr_t pc) {
  constexpr uintptr_t kNear = uintptr_t{1} << 20;  // a function and its clones/parts
  unsigned char code[8] = {};
  if (!read_code(ra - sizeof code, code, sizeof code)) return CallFit::kNone;
  const unsigned char* end = code + sizeof code;  // end[-k] is the byte at ra - k
  if (end[-5] == 0xe8) {
    int32_t rel = 0;
    for (int i = 1; i <= 4; ++i) {
      rel = static_cast<int32_t>((static_cast<uint32_t>(rel) << 8) | end[-i]);
    }
    uintptr_t target = ra + static_cast<intptr_t>(rel);
    if (const uintptr_t through = plt_destination(target)) target = through;
    const uintptr_t distance = target > pc ? target - pc : pc - target;
    return distance < kNear ? CallFit::kDirect : CallFit::kNone;
  }
  for (int length : {2, 3, 4, 6, 7}) {
    if (end[-length] == 0xff && ((end[-length + 1] >> 3) & 7) == 2) return CallFit::kPossible;
  }
  return CallFit::kNone;
}

// For a walk that started without the FP register (a thread blocked in the
// kernel: /proc gives only its SP and PC), at the first frame that needs
// it (the function holding `pc`): the frame record its prologue pushed,
// found by scanning up from SP for a word pair that looks like one, i.e. a
// return address at `ra_offset` above a saved FP, where the return address
// has rows and follows a call. Stale records left in the function's
// uninitialised locals have the same shape, so candidates are taken in
// tiers: first a direct call to this very function (checked through PLT
// stubs) under a saved FP that points further up the stack (or is 0); then
// any call under such an FP; then any call whatever the saved FP (a caller
// without frame pointers may have left any value in it). 0 if nothing in
// the first 4 KiB fits. Still a heuristic: a stale record of an indirect
// call can be taken when the true one does not fit the first tier.
uintptr_t find_frame_record(const UnwindIndex* index, uintptr_t pc, uintptr_t sp,
                            uintptr_t stack_hi, uintptr_t delta, intptr_t ra_offset) {
  constexpr uintptr_t kWord = sizeof(uintptr_t);
  constexpr uintptr_t kScan = 4096;
  if (index == nullptr || ra_offset <= 0 || sp % kWord != 0) return 0;
  for (int tier = 0; tier < 3; ++tier) {
    for (uintptr_t x = sp; x < sp + kScan && x + ra_offset + kWord <= stack_hi; x += kWord) {
      const uintptr_t saved = read_word(x, delta);
      const bool fp_plausible = saved == 0 || (saved > x && saved < stack_hi && saved % kWord == 0);
      if (tier < 2 && !fp_plausible) continue;
      const uintptr_t ra = read_word(x + ra_offset, delta);
      if (ra <= 4096 || find_unwind_row(*index, ra - 1) == nullptr) continue;
      const CallFit fit = call_fit(ra, pc);
      if (fit == CallFit::kDirect || (tier > 0 && fit == CallFit::kPossible)) return x;
    }
  }
  return 0;
}

}  // namespace

const UnwindRow* find_unwind_row(const UnwindIndex& index, uintptr_t pc) {
  const UnwindObject* object = find_object(index, pc);
  if (object == nullptr || object->row_count == 0) return nullptr;
  uintptr_t page = (pc - object->start) >> kUnwindPageShift;
  if (page >= object->page_count) return nullptr;
  uint32_t first = object->page_first[page];
  uint32_t last = object->page_first[page + 1];
  if (last >= object->row_count) last = object->row_count - 1;
  auto offset = static_cast<uint32_t>(pc - object->base);
  if (object->rows[first].pc_offset > offset) return nullptr;  // before the first row
  while (first < last) {  // the last row in [first, last] starting at or below offset
    uint32_t mid = first + (last - first + 1) / 2;
    if (object->rows[mid].pc_offset <= offset) {
      first = mid;
    } else {
      last = mid - 1;
    }
  }
  return &object->rows[first];
}

bool publish_unwind_index(const UnwindIndex* index, int grace_ms) {
  g_index.exchange(index, std::memory_order_seq_cst);
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  int64_t deadline = now.tv_sec * 1000000000LL + now.tv_nsec + int64_t{grace_ms} * 1000000;
  // Every walk that could have loaded the old index counted itself before
  // loading it. Seeing each counter at zero once after the exchange proves
  // they are all done; flipping the parity before each wait sends new walks
  // to the other counter, so the waited one can only drain.
  uint32_t first = g_epoch.fetch_add(1, std::memory_order_seq_cst) & 1;
  if (!wait_for_readers(first, deadline)) return false;
  uint32_t second = g_epoch.fetch_add(1, std::memory_order_seq_cst) & 1;
  return wait_for_readers(second, deadline);
}

WalkResult walk_stack(const MachineState& state, uintptr_t stack_lo, uintptr_t stack_hi,
                      uint64_t* frames, size_t max_frames) {
  uint32_t parity = g_epoch.load(std::memory_order_seq_cst) & 1;
  g_readers[parity].fetch_add(1, std::memory_order_seq_cst);
  const UnwindIndex* index = g_index.load(std::memory_order_seq_cst);
  WalkResult result = walk_stack_with(index, state, stack_lo, stack_hi, frames, max_frames);
  g_readers[parity].fetch_sub(1, std::memory_order_release);
  return result;
}

WalkResult walk_stack_copy(const MachineState& state, uintptr_t stack_base, const void* copy,
                           size_t copy_size, uint64_t* frames, size_t max_frames) {
  uint32_t parity = g_epoch.load(std::memory_order_seq_cst) & 1;
  g_readers[parity].fetch_add(1, std::memory_order_seq_cst);
  const UnwindIndex* index = g_index.load(std::memory_order_seq_cst);
  const uintptr_t delta = reinterpret_cast<uintptr_t>(copy) - stack_base;  // wraps as intended
  WalkResult result = walk_stack_over(index, state, stack_base, stack_base + copy_size, delta,
                                      frames, max_frames, /*scan_for_fp=*/true);
  g_readers[parity].fetch_sub(1, std::memory_order_release);
  return result;
}

WalkResult walk_stack_with(const UnwindIndex* index, const MachineState& state, uintptr_t stack_lo,
                           uintptr_t stack_hi, uint64_t* frames, size_t max_frames) {
  return walk_stack_over(index, state, stack_lo, stack_hi, 0, frames, max_frames,
                         /*scan_for_fp=*/false);
}

CPPROF_READS_RAW_STACK WalkResult walk_stack_over(const UnwindIndex* index,
                                                  const MachineState& state, uintptr_t stack_lo,
                                                  uintptr_t stack_hi, uintptr_t delta,
                                                  uint64_t* frames, size_t max_frames,
                                                  bool scan_for_fp) {
  constexpr uintptr_t kWord = sizeof(uintptr_t);
  WalkResult result;
  if (max_frames == 0) return result;
  frames[result.depth++] = state.pc;
  if (stack_hi == 0 || state.sp >= stack_hi) return result;
  uintptr_t pc = state.pc;
  uintptr_t sp = state.sp;
  uintptr_t fp = state.fp;
  uintptr_t lo = sp > stack_lo ? sp : stack_lo;  // nothing below the current frame is ours to read
  while (result.depth < max_frames) {
    bool leaf = result.depth == 1;
    // A caller's return address may sit just past its function's last call
    // (a noreturn callee): look up the call instruction instead.
    const UnwindRow* row = index != nullptr ? find_unwind_row(*index, leaf ? pc : pc - 1) : nullptr;
    uintptr_t return_address = 0;
    bool suspect_leaf = false;
    uintptr_t caller_fp = fp;
    uintptr_t caller_sp = 0;
    if (row != nullptr && row->cfa_rule != CfaRule::kNone) {
      uintptr_t cfa = 0;
      switch (row->cfa_rule) {
        case CfaRule::kSp:
          cfa = sp + static_cast<intptr_t>(row->cfa_offset);
          break;
        case CfaRule::kFp:
          if (fp == 0 && scan_for_fp) {
            fp = find_frame_record(
                index, pc, sp, stack_hi, delta,
                static_cast<intptr_t>(row->cfa_offset) - static_cast<intptr_t>(kWord));
            scan_for_fp = false;  // once: later frames restore FP from records
          }
          cfa = fp + static_cast<intptr_t>(row->cfa_offset);
          break;
        case CfaRule::kPlt:
          // gcc's expression: SP + 8, or SP + 16 from offset `cfa_offset` of
          // a 16-byte PLT entry on (past its push).
          cfa = sp + ((pc & 15) >= static_cast<uintptr_t>(row->cfa_offset) ? 2 * kWord : kWord);
          break;
        case CfaRule::kEnd:
        case CfaRule::kNone:
          return result;
      }
      // The return address is the word below the CFA (x86-64), above SP.
      if (cfa <= sp || cfa % kWord != 0 || cfa - kWord < lo || cfa > stack_hi) break;
      return_address = read_word(cfa - kWord, delta);
      if (row->fp_rule == FpRule::kSaved) {
        uintptr_t slot = cfa + static_cast<intptr_t>(row->fp_offset);
        if (leaf && slot < sp) {
          // An epilogue past its `pop %rbp` (compilers do not always say
          // so): the register already holds the caller's value. Or a leaf
          // that saved FP below SP in the red zone and uses it as scratch:
          // then the caller found next may be wrong, so leave the leaf's
          // caller to the aggregator's check.
          suspect_leaf = true;
        } else if (slot < lo || slot % kWord != 0 || slot > stack_hi - kWord) {
          break;
        } else {
          caller_fp = read_word(slot, delta);
        }
      }
      caller_sp = cfa;
      if (leaf) result.leaf_unwound = !suspect_leaf;
    } else {
      // No rows for this code: follow the frame record, as a plain FP walk does.
      if (fp == 0 && scan_for_fp) {
        fp = find_frame_record(index, pc, sp, stack_hi, delta, kWord);
        scan_for_fp = false;
      }
      if (fp < lo || fp % kWord != 0 || fp > stack_hi - 2 * kWord) break;
      caller_fp = read_word(fp, delta);
      return_address = read_word(fp + kWord, delta);
      caller_sp = fp + 2 * kWord;
    }
    if (return_address == 0) break;
    frames[result.depth++] = return_address;
    pc = return_address;
    sp = caller_sp;
    fp = caller_fp;
    lo = sp;
  }
  return result;
}

}  // namespace cpprof::capture

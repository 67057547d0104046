// Stack walk from a signal context with DWARF call-frame rows, falling back
// to frame pointers. Async-signal-safe, allocation-free, lock-free.
//
// The rows come from the objects' .eh_frame, decoded outside any handler
// (sources/cpu/unwind_tables) into a flat, sorted table per object: for a
// range of code addresses, how to find the canonical frame address (CFA)
// from SP or FP, where the caller's FP was saved, and that the return
// address sits just below the CFA (x86-64). The handler only searches those
// tables and reads the thread's own stack inside its bounds; it never
// touches the objects' files, their .eh_frame or the loader (no
// dl_iterate_phdr), so dlopen() and dlclose() racing with it are harmless.
//
// The set of tables is published as one immutable UnwindIndex. A publisher
// swaps in a new one and waits until no handler can still be reading the
// old one (two reader counters by parity, as in userspace RCU) before it
// frees it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "capture/frame_walk.h"

namespace cpprof::capture {

// How to find the CFA in one row.
enum class CfaRule : uint8_t {
  kNone = 0,  // no information: a gap between functions, or a rule we do not follow
  kSp = 1,    // CFA = SP + cfa_offset
  kFp = 2,    // CFA = FP + cfa_offset
  kPlt = 3,   // a PLT stub: CFA = SP + 8, or SP + 16 past its push (gcc's expression)
  kEnd = 4,   // the outermost frame (return address undefined): stop here
};

// Where the caller's frame pointer is.
enum class FpRule : uint8_t {
  kSame = 0,   // unchanged (not saved by this function, or not yet)
  kSaved = 1,  // at CFA + fp_offset
};

// One row: from `pc_offset` (relative to its object's base) up to the next
// row's, the frame is described by these rules.
struct UnwindRow {
  uint32_t pc_offset;
  CfaRule cfa_rule;
  FpRule fp_rule;
  int16_t fp_offset;
  int32_t cfa_offset;
};
static_assert(sizeof(UnwindRow) == 12);

// The rows of one loaded object, sorted by pc_offset.
struct UnwindObject {
  uintptr_t start = 0;  // lowest code address covered (runtime)
  uintptr_t limit = 0;  // one past the highest
  uintptr_t base = 0;   // runtime address that pc offsets count from
  const UnwindRow* rows = nullptr;
  uint32_t row_count = 0;
  // page_first[p]: the index of the row in effect at start + p * kUnwindPage
  // (page_count + 1 entries), so that a lookup searches one page's rows.
  const uint32_t* page_first = nullptr;
  uint32_t page_count = 0;
};

inline constexpr uintptr_t kUnwindPageShift = 12;

// Every object with rows, sorted by start, not overlapping.
struct UnwindIndex {
  const UnwindObject* objects = nullptr;
  size_t count = 0;
};

// The row in effect at `pc`, or nullptr if no object covers it.
const UnwindRow* find_unwind_row(const UnwindIndex& index, uintptr_t pc);

// Installs `index` (may be null: frame pointers only) for every later walk,
// then waits up to `grace_ms` for walks that may still read the previous
// index. Returns true if the previous index can be freed now; false if a
// handler stayed inside a walk that long (a stopped thread): keep it.
// One publisher at a time (callers serialise).
bool publish_unwind_index(const UnwindIndex* index, int grace_ms);

// What a walk found out, for the aggregator.
struct WalkResult {
  size_t depth = 0;           // frames written
  bool leaf_unwound = false;  // frames[1] is the leaf's caller by its row (no guessing needed)
};

// Fills `frames` with the interrupted PC, then the return addresses of the
// callers, outwards: by the published rows where an object has them, by the
// frame-pointer chain where not. Reads memory only inside
// [max(sp, stack_lo), stack_hi); with unknown bounds (stack_hi == 0)
// records only the PC.
WalkResult walk_stack(const MachineState& state, uintptr_t stack_lo, uintptr_t stack_hi,
                      uint64_t* frames, size_t max_frames);

// Like walk_stack, with a given index and no reader accounting (tests and
// benchmarks, where nothing publishes concurrently).
WalkResult walk_stack_with(const UnwindIndex* index, const MachineState& state, uintptr_t stack_lo,
                           uintptr_t stack_hi, uint64_t* frames, size_t max_frames);

// Like walk_stack, over a copy of another thread's stack: `copy` holds
// `copy_size` bytes read from `stack_base` upwards (state.sp should be
// stack_base). Nothing outside the copy is read, so the walk is safe even
// if that thread has exited meanwhile. state.fp may be 0 (unknown): the
// first frame whose rows need it then has its frame record looked for by
// scanning the stack (a heuristic; see find_frame_record in unwind.cc).
WalkResult walk_stack_copy(const MachineState& state, uintptr_t stack_base, const void* copy,
                           size_t copy_size, uint64_t* frames, size_t max_frames);

// The walk behind the others: reads the stack word at address A from
// A + delta (0: in place), inside [max(sp, stack_lo), stack_hi);
// `scan_for_fp` as walk_stack_copy does with an unknown FP.
WalkResult walk_stack_over(const UnwindIndex* index, const MachineState& state, uintptr_t stack_lo,
                           uintptr_t stack_hi, uintptr_t delta, uint64_t* frames, size_t max_frames,
                           bool scan_for_fp);

}  // namespace cpprof::capture

// Go's debug=1 heap text (runtime/pprof writeHeapInternal), for
// /debug/pprof/heap?debug=1 and /debug/pprof/allocs?debug=1:
//
//   heap profile: <inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>] @ heap/<2*rate>
//   <inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>] @ 0x<ret> 0x<ret> ...
//   #	0x<pc>	<function>+0x<offset>	<file>:<line>
//   ...
//
// Records are sorted by in-use bytes, largest first. The numbers are the
// raw sample counts, not unbiased ones: readers (pprof's legacy parser)
// unbias them themselves from the rate in the header, which Go writes as
// twice the rate for historical reasons. `@` lists the return addresses;
// each `#` line is one frame at return address - 1, inlined frames first,
// the offset taken from the start of the out-of-line function. Columns are
// aligned as Go's tabwriter aligns them.
//
// Go follows with a "# runtime.MemStats" section of its garbage collector's
// numbers, which a C++ process does not have; the caller passes what it
// has (exact allocation counters, MaxRSS) and they are printed under
// "# cpprof.AllocStats" in the same "# Name = value" form.
//
// Thread-safe as the symbolizer is; allocates.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sources/heap/heap_snapshot.h"
#include "symbolize/symbolizer.h"

namespace cpprof::sources {

// One "# Name = value" line of the closing section.
using HeapTextStat = std::pair<std::string, int64_t>;

// The debug=1 text of `snapshot`, closed by `stats` (no section if empty).
std::string heap_text(const HeapSnapshot& snapshot, symbolize::Symbolizer& symbolizer,
                      const std::vector<HeapTextStat>& stats);

}  // namespace cpprof::sources

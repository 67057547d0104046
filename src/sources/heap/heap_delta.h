// The delta of two heap profiles, for /debug/pprof/heap?seconds=N and
// allocs?seconds=N: what Go's net/http/pprof answers there (serveDeltaProfile:
// the earlier profile scaled by -1, merged with the later one by
// profile.Merge).
//
//   - every value is later minus earlier, inuse_* included: Go subtracts
//     all four, so inuse_* is the change of the live heap over the window
//     and may be negative;
//   - samples are matched by stack (each location's address and source
//     lines) and labels, as profile.Merge matches them; a sample found only
//     in `earlier` enters negated, one found only in `later` as it is;
//   - samples whose values all come to zero are dropped, and locations and
//     functions no sample uses any more with them;
//   - the result is stamped with the later time and lasts from the earlier.
// One difference, forced by cpprof's buckets: Go keeps a bucket per stack
// and size, so a sample's "bytes" label never changes; ours are per stack
// with the average size as label, which moves as allocations come. A stack
// with exactly one sample in each profile therefore matches even when its
// "bytes" label moved, and keeps the later label.
//
// Pure function; thread-safe.
#pragma once

#include "profile/profile.h"

namespace cpprof::sources {

// later - earlier, as above. Both must be heap profiles of this process.
profile::Profile delta_heap(const profile::Profile& earlier, const profile::Profile& later);

}  // namespace cpprof::sources

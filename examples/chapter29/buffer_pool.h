// Lesson: a pool for temporary buffers, the counterpart of Go's sync.Pool.
//
// Both functions render the same reply into a 16 KiB scratch buffer and
// return a checksum of it. render_with_new makes a fresh buffer for every
// call (std::make_unique: one allocation of sizeof(ScratchBuffer) and
// 16 KiB zeroed, then one delete). render_with_pool leases one from a
// cpprof::Pool: after the first call of a thread, which misses, the pool
// hands back the buffer the thread returned last, and the call allocates
// nothing (cpprof/pool.h: a hit on the thread's own slot takes no lock).
// Both are thread-safe; any number of threads may share one pool.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "cpprof/pool.h"

namespace chapter29 {

struct ScratchBuffer {
  std::array<char, 16384> bytes;
  std::size_t used = 0;  // reset by whoever takes the buffer
};

using BufferPool = cpprof::Pool<ScratchBuffer>;

// The reply to request `request`: its number and the squares of
// 0..`numbers`-1, as decimal text, checksummed.
uint64_t render_with_new(int request, int numbers);
uint64_t render_with_pool(BufferPool& pool, int request, int numbers);

}  // namespace chapter29

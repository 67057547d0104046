// The count the index page shows next to heap and allocs: how many
// allocation stacks have samples (Go shows its number of heap records).
// One relaxed load, so it may be called on the server's io thread.
#pragma once

#include <cstdint>

namespace cpprof::sources {

// Stacks with at least one sampled allocation; 0 while nothing is sampled.
int64_t heap_stack_count();

}  // namespace cpprof::sources

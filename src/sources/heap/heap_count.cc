#include "sources/heap/heap_count.h"

#include "capture/heap_buckets.h"

namespace cpprof::sources {

int64_t heap_stack_count() { return static_cast<int64_t>(capture::heap_bucket_count()); }

}  // namespace cpprof::sources

// The registry entries of the sampled heap: /debug/pprof/heap,
// /debug/pprof/allocs and /debug/pprof/delta_heap (docs/heap.md).
//
//   heap, allocs  a snapshot each request; seconds=N gives Go's delta
//                 (sources/heap/heap_delta.h); debug=1 Go's text
//                 (sources/heap/heap_text.h). They differ only in the
//                 sample type pprof shows first.
//   delta_heap    godeltaprof's endpoint for Grafana Alloy
//                 (sources/heap/scrape_delta.h); neither seconds nor debug.
// While heap profiling is off (the snapshot says why), every request gets
// 503 with that reason.
//
// The snapshot source is a parameter so that tests can serve hand-made
// snapshots; the library passes sources::take_heap_snapshot and
// sources::heap_stack_count.
#pragma once

#include <cstdint>
#include <functional>

#include "http/registry.h"
#include "sources/heap/heap_snapshot.h"
#include "symbolize/symbolizer.h"

namespace cpprof::api {

// Adds heap, allocs and delta_heap to `registry`. `symbolizer` must outlive
// the registry; `take_snapshot` is called on the server's worker thread,
// `count` (heap's and allocs' number on the index page; may be empty) on
// its io thread.
void add_heap_entries(http::Registry& registry, symbolize::Symbolizer& symbolizer,
                      std::function<sources::HeapSnapshot()> take_snapshot,
                      std::function<int64_t()> count);

}  // namespace cpprof::api

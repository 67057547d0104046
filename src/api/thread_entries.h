// The registry entries of the thread profiles (docs/threads.md):
//
//   goroutine     every host thread's stack (sources/threads/thread_dump.h):
//                 debug=0 grouped by stack, debug=1 Go's grouped text,
//                 debug=2 every thread with its name, state and system call
//   threadcreate  where the live threads were created; debug=1 Go's text
//
// Each request takes one dump when it opens; cpprof's own threads are left
// out of both (the index page counts them).
#pragma once

#include "http/registry.h"
#include "symbolize/symbolizer.h"

namespace cpprof::api {

// Adds goroutine and threadcreate to `registry`. `symbolizer` must outlive it.
void add_thread_entries(http::Registry& registry, symbolize::Symbolizer& symbolizer);

}  // namespace cpprof::api

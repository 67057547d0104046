// Bringing the thread table in line with /proc/self/task: threads that
// predate the library (or were started by a raw clone) are added with
// their stack bounds; entries of such threads that have exited are removed.
// Threads started through our pthread_create manage their own entries.
// Not for signal handlers: it reads /proc and allocates.
#pragma once

#include <functional>

#include "capture/thread_table.h"

namespace cpprof::sources {

// Runs one scan. `before_release` is called for each slot about to be freed
// (its thread is gone), so that the slot's timer can be deleted first.
// Concurrent scans must be serialised by the caller.
void scan_threads(const std::function<void(capture::ThreadSlot*)>& before_release);

}  // namespace cpprof::sources

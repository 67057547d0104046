// Serving one registry entry: the three shapes of a profile request.
//
//  - snapshot (no seconds, default_seconds == 0: heap, goroutine): the
//    worker opens and finishes a collection at once and encodes it.
//  - window (default_seconds > 0 or seconds=N on such an entry: the CPU
//    profile): open() now on the io thread, an asio timer for N seconds (no
//    thread waits), then finish() and encoding on the worker.
//  - delta (seconds=N on a snapshot entry with `delta`): snapshot, wait N
//    seconds, snapshot again, answer delta(earlier, later) as "<name>-delta".
//
// Windows and deltas take one of ServerConfig::max_windows slots (503 when
// none is free) and end early, dropping their collection, when the client
// disconnects. Io thread only; the work it hands to the worker never touches
// sockets or timers.
#pragma once

#include <memory>
#include <vector>

#include "http/query.h"
#include "http/registry.h"

namespace cpprof::http {

class Session;
struct ServerState;

// Checks the query (400 on a bad one) and starts the answer for `entry`.
void serve_profile(ServerState& state, const std::shared_ptr<Session>& session,
                   const ProfileEntry& entry, const std::vector<QueryParam>& params);

}  // namespace cpprof::http

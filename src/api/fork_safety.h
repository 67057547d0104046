// fork() in a process cpprof lives in. A child must never inherit a lock
// held by a thread that does not exist there, a half-running server, or
// armed timers:
//  - the sampled paths' spin locks are held across fork by the forking
//    thread (capture/alloc_counters.cc), and cpprof's own mutexes here
//    (thread dumps, the CPU profiler, the unwind tables, the symbolizer,
//    taken in that order, the order cpprof's threads nest them);
//  - the child closes its copies of the servers' sockets
//    (http::forget_servers_after_fork) and does not serve, unless
//    CPPROF_CHILDREN asks every process to (then it starts its own server
//    on a free port of the same host, announced in the log);
//  - CPU timers are the parent's (sources/cpu forgets them in the child).
#pragma once

#include <functional>

namespace cpprof::api {

// Registers the fork handlers, once; later calls do nothing. Thread-safe.
void install_fork_handlers();

// What a fork child runs (on a thread of its own, shortly after fork) to
// serve; set by the environment start-up when CPPROF_CHILDREN is on.
void set_fork_child_server(std::function<void()> start);

}  // namespace cpprof::api

#include "api/fork_safety.h"

#include <pthread.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <utility>

#include "api/runtime.h"
#include "http/server.h"
#include "sources/cpu/unwind_tables.h"
#include "sources/threads/internal_thread.h"
#include "sources/threads/thread_dump.h"

namespace cpprof::api {
namespace {

// cpprof's mutexes in the order its threads nest them; the CPU profiler's
// only if a runtime exists (it is created with the first server).
struct HeldLocks {
  std::mutex* locks[4] = {};
  int count = 0;
};
HeldLocks g_held;

std::function<void()>* g_child_server = nullptr;  // set once, before any fork matters

void lock_before_fork() {
  HeldLocks held;
  held.locks[held.count++] = &sources::thread_dump_mutex();
  if (Runtime* rt = runtime_if_created()) held.locks[held.count++] = &rt->cpu->fork_mutex();
  held.locks[held.count++] = &sources::process_unwind_tables_mutex();
  held.locks[held.count++] = &process_symbolizer().fork_mutex();
  for (int i = 0; i < held.count; ++i) held.locks[i]->lock();
  g_held = held;
}

void unlock_after_fork() {
  for (int i = g_held.count - 1; i >= 0; --i) g_held.locks[i]->unlock();
  g_held = HeldLocks{};
}

void in_child_after_fork() {
  unlock_after_fork();
  http::forget_servers_after_fork();
  if (g_child_server == nullptr) return;
  // Not here, inside fork(): a child that execs at once never starts one.
  std::thread starter = sources::spawn_internal_thread("cpprof-start", [] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    (*g_child_server)();
  });
  starter.detach();
}

}  // namespace

void install_fork_handlers() {
  static std::once_flag once;
  std::call_once(once,
                 [] { pthread_atfork(lock_before_fork, unlock_after_fork, in_child_after_fork); });
}

void set_fork_child_server(std::function<void()> start) {
  if (g_child_server == nullptr) g_child_server = new std::function<void()>(std::move(start));
}

}  // namespace cpprof::api

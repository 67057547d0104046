#include "sources/threads/internal_thread.h"

#include <pthread.h>
#include <signal.h>

#include <utility>

#include "capture/thread_hooks.h"

namespace cpprof::sources {

std::thread spawn_internal_thread(std::string name, std::function<void()> body) {
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);  // the new thread inherits this mask
  capture::InternalThreadScope internal;
  std::thread thread([name = std::move(name), body = std::move(body)] {
    // Also when pthread_create was not interposed (e.g. a late dlopen).
    capture::register_current_thread(/*internal=*/true);
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    body();
  });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return thread;
}

}  // namespace cpprof::sources

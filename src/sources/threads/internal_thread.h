// Starting cpprof's own threads: marked internal in the thread table (so no
// CPU timer is armed for them and they are left out of thread profiles)
// and with every signal blocked, so the host's signals and our sampling
// signal are delivered to the host's threads only.
#pragma once

#include <functional>
#include <string>
#include <thread>

namespace cpprof::sources {

// Starts `body` on a new internal thread named `name` (15 characters at most
// are kept). Thread-safe.
std::thread spawn_internal_thread(std::string name, std::function<void()> body);

}  // namespace cpprof::sources

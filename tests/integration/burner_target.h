// Starting the CPU burner test program the three ways a user would profile
// it: linked with cpprof, with LD_PRELOAD + CPPROF_HTTP, and under
// `cpprof run`; each gives the child process and the port it serves on.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.h"

namespace cpprof::test {

enum class Launch { kLinked, kPreload, kCpprofRun };

struct Target {
  std::unique_ptr<ChildProcess> process;
  uint16_t port = 0;
  int served_pid = 0;  // the pid in cpprof's log line (preload and run only)
  std::string log_path;
};

// Starts the test program `program` (its "<program>_linked" build when
// linked, which must print "port N") with `args` and `env`, and waits until
// it serves and prints "ready". On failure, `port` is 0 and `error` says why.
Target start_program(Launch how, const std::string& program, std::vector<std::string> args,
                     std::string* error, std::map<std::string, std::string> env = {});

// Starts the burner (`threads` workers, `hz` samples/s) and waits until it
// serves. `extra_env` is added to its environment (e.g. CPPROF_CPU_MODE,
// which the linked burner reads too). On failure, `port` is 0 and `error`
// says why.
Target start_burner(Launch how, int threads, int hz, std::string* error,
                    std::vector<std::string> extra_args = {},
                    std::map<std::string, std::string> extra_env = {});

const char* launch_name(Launch how);

}  // namespace cpprof::test

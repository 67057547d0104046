// ChildProcess: a program under test, started with its own arguments and
// environment, its stdout readable line by line, killed and reaped when the
// object goes away (so a failing test never leaves a busy process behind).
// Not thread-safe: one test thread drives it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cpprof::test {

class ChildProcess {
 public:
  // Starts `argv[0]` (a path, or a name looked up in PATH) with the current
  // environment plus `env` (a value of "" removes the variable). Its stdin
  // is a pipe that stays open until close_stdin(); stderr is inherited.
  ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // The next line of stdout (without '\n'), or nullopt at EOF or timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Reads lines until one starts with `prefix`; returns the rest of it.
  std::optional<std::string> wait_for_line(const std::string& prefix,
                                           std::chrono::milliseconds timeout);

  // Writes `text` to the child's stdin; false if it is closed or the child
  // no longer reads it (never SIGPIPE).
  bool write_stdin(std::string_view text);
  // Closes the child's stdin (our test programs exit on EOF).
  void close_stdin();
  // Waits for the child to end; its wait status, or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Sends `signo`.
  void kill(int signo);

  // CPU time (user + system) the child has used so far, from /proc/PID/stat.
  std::chrono::nanoseconds cpu_time() const;

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
  bool reaped_ = false;
};

// Path of a binary built in this tree (bin/ of the build directory).
std::string built_binary(const std::string& name);
// Path of libcpprof.so in this tree.
std::string built_library();

}  // namespace cpprof::test

// cpprof::Options: everything a cpprof::Server can be told. Environment
// variables (CPPROF_*) override these fields only when apply_environment
// is set, and only for the server the library starts by itself.
#pragma once

#include <string>

#include "cpprof/export.h"

namespace cpprof {

// What triggers CPU samples on each thread (CPPROF_CPU_MODE).
enum class CpuMode {
  // Perf events where the kernel allows this process to open them (not, for
  // example, under kernel.perf_event_paranoid=3 without CAP_PERFMON, or in a
  // container whose seccomp profile refuses perf_event_open); else timers.
  kAuto,
  // Per-thread perf_event `cpu-clock` events: they signal at the asked rate
  // (timers at most once per kernel tick) but each takes a file descriptor,
  // placed high (see the user guide). If they cannot be opened, CPU profile
  // requests fail with 503 and the reason.
  kPerf,
  // Per-thread POSIX timers on each thread's CPU-time clock.
  kTimer,
};

struct Options {
  // HOST:PORT to serve /debug/pprof/ on. ":PORT" means 127.0.0.1; port 0
  // picks a free port (Server::port() tells which).
  std::string address = "127.0.0.1:6060";
  // Serving on anything but a loopback address must be asked for.
  bool allow_remote = false;
  // If not empty, every request must carry "Authorization: Bearer <token>".
  std::string token;
  // CPU samples per CPU-second of each thread (1..10000).
  int cpu_hz = 100;
  // What triggers CPU samples.
  CpuMode cpu_mode = CpuMode::kAuto;
  // Where cpprof's own lines go (one when serving starts, one per problem):
  // "stderr", "off", or a file name to append to.
  std::string log = "stderr";
};

// Options from the CPPROF_* environment variables over `defaults`.
// Invalid values are reported in `error` (one line); the library then
// refuses to serve rather than serve differently than asked (an unreadable
// CPPROF_TOKEN_FILE must never mean "no token").
CPPROF_EXPORT Options options_from_environment(Options defaults, std::string* error);

}  // namespace cpprof

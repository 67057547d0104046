// cpprof::Options: everything a cpprof::Server can be told. Environment
// variables (CPPROF_*) override these fields only when apply_environment
// is set, and only for the server the library starts by itself.
#pragma once

#include <string>

#include "cpprof/export.h"

namespace cpprof {

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

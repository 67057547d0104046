// CPPROF_OUT=DIR: profiles of the whole run, written when the program
// exits normally, for programs too short-lived to be asked over HTTP.
//
// At load, a CPU profile window opens (sampling starts then); at exit
// (return from main, exit()) an atexit handler finishes it and writes
//   DIR/cpu.<pid>.pb.gz    the CPU profile from load to exit
//   DIR/heap.<pid>.pb.gz   the sampled heap at exit (unless heap
//                          profiling is off)
// each written to a temporary name first and renamed, so a reader never
// sees half a file; one log line says where they went. Nothing is written
// when the process dies of a signal (SIGSEGV, abort, SIGKILL) or leaves by
// _exit() or exec: atexit handlers do not run then (docs/user-guide.md).
#pragma once

#include <string>

#include "cpprof/options.h"

namespace cpprof::api {

// Opens the whole-run CPU window and registers the exit handler. Returns
// false (and logs why) when `dir` is not a writable directory or CPU
// sampling cannot start; the heap profile is still written then if it can.
bool start_exit_profiles(const std::string& dir, const Options& options);

}  // namespace cpprof::api

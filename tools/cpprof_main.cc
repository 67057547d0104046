// The `cpprof` command line.
//
//   cpprof run [--http ADDR] [--out DIR] [--children] -- PROGRAM [ARGS...]
//
// Runs PROGRAM in place of itself (same pid, so the caller sees PROGRAM's
// exit code and signals) with libcpprof preloaded and serving on ADDR, and
// with --out, writing its whole-run CPU and heap profiles into DIR at exit.
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "api/address.h"
#include "program_kind.h"

namespace {

constexpr const char* kUsage =
    "usage: cpprof run [--http HOST:PORT] [--out DIR] [--children] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Runs PROGRAM with cpprof preloaded, serving Go-compatible profiles at\n"
    "http://HOST:PORT/debug/pprof/ (default 127.0.0.1:6060; port 0 picks one).\n"
    "--out DIR also writes DIR/cpu.PID.pb.gz (the whole run) and\n"
    "DIR/heap.PID.pb.gz when PROGRAM exits normally (CPPROF_OUT).\n"
    "Only PROGRAM serves; the processes it starts inherit the preload but do\n"
    "not serve. --children: every process it starts, exec'd or forked (a\n"
    "daemon), serves too, on a free port of HOST announced in the log\n"
    "(CPPROF_CHILDREN=1). A fully static PROGRAM cannot be preloaded into:\n"
    "cpprof says so and runs it anyway. Environment: CPPROF_LIBRARY overrides\n"
    "where libcpprof.so is found; every other CPPROF_* variable is passed on\n"
    "(see the README).\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "cpprof: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

std::string directory_of_self() {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return ".";
  path[n] = '\0';
  std::string s(path);
  return s.substr(0, s.rfind('/'));
}

// libcpprof.so next to this binary, as installed (bin/ beside lib/) or as built.
std::string find_library() {
  if (const char* explicit_path = std::getenv("CPPROF_LIBRARY")) return explicit_path;
  std::string bin = directory_of_self();
  for (const char* relative :
       {"/../" CPPROF_INSTALL_LIBDIR "/libcpprof.so", "/../lib/libcpprof.so", "/libcpprof.so"}) {
    std::string candidate = bin + relative;
    char resolved[PATH_MAX];
    if (access(candidate.c_str(), R_OK) == 0 && realpath(candidate.c_str(), resolved)) {
      return resolved;
    }
  }
  return "";
}

int run(int argc, char** argv) {
  std::string http = "127.0.0.1:6060";
  std::string out;
  bool children = false;
  int i = 0;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--http" || arg.rfind("--http=", 0) == 0) {
      if (arg == "--http") {
        if (i + 1 >= argc) return usage_error("--http needs HOST:PORT");
        http = argv[++i];
      } else {
        http = arg.substr(7);
      }
      continue;
    }
    if (arg == "--out" || arg.rfind("--out=", 0) == 0) {
      if (arg == "--out") {
        if (i + 1 >= argc) return usage_error("--out needs a directory");
        out = argv[++i];
      } else {
        out = arg.substr(6);
      }
      if (out.empty()) return usage_error("--out needs a directory");
      continue;
    }
    if (arg == "--children") {
      children = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg.rfind("-", 0) == 0) return usage_error("unknown option " + arg);
    break;  // the program
  }
  if (i >= argc) return usage_error("no program to run");

  cpprof::api::HostPort where;
  std::string error;
  if (!cpprof::api::parse_host_port(http, &where, &error)) return usage_error(error);
  std::string library = find_library();
  if (library.empty()) {
    std::fprintf(stderr, "cpprof: cannot find libcpprof.so (set CPPROF_LIBRARY)\n");
    return 127;
  }
  std::string preload = library;
  if (const char* existing = std::getenv("LD_PRELOAD"); existing && *existing) {
    preload += ":" + std::string(existing);
  }
  setenv("LD_PRELOAD", preload.c_str(), 1);
  setenv("CPPROF_HTTP", http.c_str(), 1);
  if (!out.empty()) {
    // Absolute: the program may change its working directory before exit.
    if (mkdir(out.c_str(), 0700) != 0 && errno != EEXIST) {
      std::fprintf(stderr, "cpprof: --out %s: %s\n", out.c_str(), std::strerror(errno));
      return 2;
    }
    char resolved[PATH_MAX];
    if (realpath(out.c_str(), resolved) == nullptr) {
      std::fprintf(stderr, "cpprof: --out %s: %s\n", out.c_str(), std::strerror(errno));
      return 2;
    }
    setenv("CPPROF_OUT", resolved, 1);
  }
  // Only this process (the pid survives exec) serves; its children inherit
  // the preload but stay quiet.
  setenv("CPPROF_RUN_PID", std::to_string(getpid()).c_str(), 1);
  if (children) setenv("CPPROF_CHILDREN", "1", 1);
  const bool preload_impossible = cpprof::cli::warn_if_statically_linked(argv[i]);
  if (where.port != 0 && !preload_impossible) {
    std::fprintf(stderr, "cpprof: profiling %s at http://%s:%u/debug/pprof/\n", argv[i],
                 where.host.find(':') == std::string::npos ? where.host.c_str()
                                                           : ("[" + where.host + "]").c_str(),
                 where.port);
  }
  execvp(argv[i], argv + i);
  int err = errno;
  std::fprintf(stderr, "cpprof: cannot run %s: %s\n", argv[i], std::strerror(err));
  return err == ENOENT ? 127 : 126;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("missing command");
  std::string command = argv[1];
  if (command == "run") return run(argc - 2, argv + 2);
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  return usage_error("unknown command \"" + command + "\"");
}

#include "support/pprof_tool.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace cpprof::test {
namespace {

namespace fs = std::filesystem;

// A private directory, removed with everything in it when done.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/cpprof-pprof-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Resolved before spawning, so no PATH search happens in the child.
std::string find_go() {
  const char* path = getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    const size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    dirs = colon == std::string_view::npos ? "" : dirs.substr(colon + 1);
    const std::string candidate = (dir.empty() ? "." : dir) + "/go";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

bool is_url(const std::string& s) { return s.find("://") != std::string::npos; }

// The caller's environment, with everything go and pprof could write to or be
// steered by pointed into `dir`.
std::vector<std::string> hermetic_env(const std::string& dir) {
  const std::vector<std::pair<std::string, std::string>> overrides = {
      {"HOME", dir},
      {"GOCACHE", dir + "/gocache"},
      {"GOPATH", dir + "/gopath"},
      {"PPROF_TMPDIR", dir},
      {"TZ", "UTC"},
      {"GOTOOLCHAIN", "local"},
      {"GOFLAGS", ""},
      {"GOENV", "off"},
      {"PPROF_BINARY_PATH", dir},
  };
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    bool overridden = false;
    for (const auto& [key, value] : overrides) {
      overridden |=
          kv.size() > key.size() && kv.substr(0, key.size()) == key && kv[key.size()] == '=';
    }
    if (!overridden) env.emplace_back(kv);
  }
  for (const auto& [key, value] : overrides) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (std::string& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

PprofResult run_pprof(const std::string& profile_path, const std::vector<std::string>& flags,
                      int timeout_seconds) {
  PprofResult result;
  const std::string go = find_go();
  if (go.empty()) {
    result.err = "`go` not found on PATH; install golang-go";
    return result;
  }
  TempDir dir;
  if (!dir.ok()) {
    result.err = "cannot create a temporary directory";
    return result;
  }
  std::vector<std::string> args = {"go", "tool", "pprof", "-symbolize=none"};
  args.insert(args.end(), flags.begin(), flags.end());
  // pprof runs in the temporary directory, so a relative path must not stay relative.
  args.push_back(is_url(profile_path) ? profile_path : fs::absolute(profile_path).string());
  std::vector<std::string> env = hermetic_env(dir.path());
  std::vector<char*> argv = c_strings(args);
  std::vector<char*> envp = c_strings(env);
  const std::string out_path = dir.path() + "/stdout";
  const std::string err_path = dir.path() + "/stderr";

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  // Files, not pipes: nothing to drain concurrently, nothing to deadlock on.
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addchdir_np(&actions, dir.path().c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group, so a timeout also ends the pprof that `go` started.
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, go.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    result.err = "posix_spawn(" + go + ") failed: " + std::to_string(rc);
    return result;
  }

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  int status = 0;
  bool timed_out = false;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  result.out = read_file(out_path);
  result.err = read_file(err_path);
  if (timed_out) {
    result.err += "\n(killed after " + std::to_string(timeout_seconds) + " s)";
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

PprofResult run_pprof_on_bytes(std::string_view profile_bytes,
                               const std::vector<std::string>& flags, int timeout_seconds) {
  TempDir dir;
  if (!dir.ok()) return {-1, "", "cannot create a temporary directory"};
  const std::string path = dir.path() + "/profile.pb.gz";
  std::ofstream(path, std::ios::binary).write(profile_bytes.data(), profile_bytes.size());
  return run_pprof(path, flags, timeout_seconds);
}

}  // namespace cpprof::test

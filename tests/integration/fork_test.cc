// fork() in a profiled host: children forked while other threads allocate
// and a CPU profile runs complete a malloc-heavy task and exit, 100 times; a
// daemon (double fork) leaves no half-running server behind and, with
// CPPROF_CHILDREN=1, serves on a port of its own; under `cpprof run
// --children`, exec'd children serve on their own ports, announced in the log.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.h"
#include "support/eventually.h"
#include "support/http_client.h"
#include "support/pprof_tool.h"
#include "support/preload.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

enum class How { kLinked, kPreload };

std::map<std::string, std::string> env_for(How how, std::map<std::string, std::string> more = {}) {
  more["CPPROF_LOG"] = "/dev/stdout";
#ifdef CPPROF_SANITIZE
  // LeakSanitizer in a child forked from a multi-threaded process inherits
  // the parent's thread registry: it cannot suspend or scan threads that do
  // not exist there, so it reports their heap as leaked (exit code 23) and
  // can stall at exit. ASan and UBSan still check every child.
  const char* asan = std::getenv("ASAN_OPTIONS");
  more["ASAN_OPTIONS"] = std::string(asan != nullptr ? asan : "") + ":detect_leaks=0";
#endif
  if (how == How::kPreload) {
    more["LD_PRELOAD"] = built_library();
    more["CPPROF_HTTP"] = "127.0.0.1:0";
  } else {
    more["CPPROF_HTTP"] = "";  // main's own Server is the one serving
  }
  return more;
}

std::string program(How how) {
  return built_binary(how == How::kLinked ? "fork_host_linked" : "fork_host");
}

// Reads lines until the server's port is announced (the log line when
// preloaded, the program's own line when linked); 0 if never.
uint16_t read_port(ChildProcess& child, How how) {
  const std::string prefix =
      how == How::kLinked ? "linked server on " : "cpprof: serving http://127.0.0.1:";
  std::optional<std::string> rest = child.wait_for_line(prefix, 30s);
  return rest ? static_cast<uint16_t>(std::stoi(*rest)) : 0;
}

// "cpprof: serving http://127.0.0.1:PORT/debug/pprof/ (pid PID)" -> pid, port.
bool parse_serving(const std::string& line, int* pid, uint16_t* port) {
  static const std::regex kServing(
      R"(cpprof: serving http://127\.0\.0\.1:(\d+)/debug/pprof/ \(pid (\d+)\))");
  std::smatch m;
  if (!std::regex_search(line, m, kServing)) return false;
  *port = static_cast<uint16_t>(std::stoi(m[1]));
  *pid = std::stoi(m[2]);
  return true;
}

// Whether `pid` is gone (or a zombie nobody reaps yet).
bool process_ended(int pid) {
  if (kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  return close == std::string::npos || text.compare(close + 2, 1, "Z") == 0;
}

// Whether anything accepts connections on `port` (a socket that is bound
// and listening but never accepted would accept here and hang later).
bool port_answers(uint16_t port) {
  HttpResponse r = http_get(port, "/debug/pprof/", {}, 3s);
  return r.status == 200;
}

bool port_refuses(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool refused = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0;
  close(fd);
  return refused;
}

int64_t samples_under(const RawProfile& raw, const std::string& function) {
  int64_t sum = 0;
  for (const RawSample& sample : raw.samples) {
    for (const std::string& name : raw.stack(sample)) {
      if (name.find(function) != std::string::npos) {
        sum += sample.values.at(0);
        break;
      }
    }
  }
  return sum;
}

// The threads that allocate while the host forks. Not in the sanitizer
// build: there GCC 12's ASan allocator itself is not fork-safe (the same
// program without cpprof leaves 1 child in 10 spinning inside ASan's
// quarantine); the forks, the CPU profile, the server and the children's
// work still run under ASan and UBSan.
#ifdef CPPROF_SANITIZE
constexpr const char* kAllocatingThreads = "0";
#else
constexpr const char* kAllocatingThreads = "3";
#endif

void forks_while_allocating_and_profiling(How how) {
  ChildProcess host({program(how), "stress", "100", kAllocatingThreads},
                    env_for(how, {{"CPPROF_HEAP_RATE", "1024"}}));
  const uint16_t port = read_port(host, how);
  ASSERT_NE(port, 0);
  ASSERT_TRUE(host.wait_for_line("ready", 30s));
  auto profile = std::async(std::launch::async,
                            [port] { return http_get(port, "/debug/pprof/profile?seconds=3"); });
  std::this_thread::sleep_for(300ms);  // the window is open: timers armed
  HttpConnection open_across_forks(port);
  ASSERT_TRUE(open_across_forks.connected());
  host.close_stdin();  // forks 100 times
  std::optional<std::string> done = host.wait_for_line("forked ", 300s);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(*done, "100 clean 100 hung 0 failed 0");

  const HttpResponse cpu = profile.get();
  ASSERT_EQ(cpu.status, 200) << cpu.body;
  RawProfile raw;
  ASSERT_TRUE(read_raw(cpu.body, &raw));
  if (std::string(kAllocatingThreads) != "0") {
    EXPECT_GT(samples_under(raw, "allocate_forever"), 0);
  }
  // The parent still serves after its children came and went.
  EXPECT_EQ(http_get(port, "/debug/pprof/").status, 200);
  EXPECT_EQ(http_get(port, "/debug/pprof/goroutine?debug=1").status, 200);
  host.kill(SIGUSR1);
  std::optional<int> status = host.wait(60s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

TEST(Fork, ChildrenOfAProfiledAllocatingHostFinishTheirWorkLinked) {
  forks_while_allocating_and_profiling(How::kLinked);
}

TEST(Fork, ChildrenOfAProfiledAllocatingHostFinishTheirWorkPreloaded) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  forks_while_allocating_and_profiling(How::kPreload);
}

// Starts `fork_host daemon`; returns the daemon's pid after the launched
// process has exited, 0 on failure. `port` gets the launched process's port.
int start_daemon(ChildProcess& host, How how, uint16_t* port) {
  *port = read_port(host, how);
  std::optional<std::string> daemon = host.wait_for_line("daemon ", 30s);
  std::optional<int> status = host.wait(30s);
  if (*port == 0 || !daemon || !status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    ADD_FAILURE() << "the launched process did not daemonize and exit cleanly";
    return 0;
  }
  return std::stoi(*daemon);
}

void daemon_leaves_no_half_server(How how) {
  ChildProcess host({program(how), "daemon"}, env_for(how));
  uint16_t port = 0;
  const int daemon = start_daemon(host, how, &port);
  ASSERT_NE(daemon, 0);
  // The launched process is gone; its port must refuse connections, not
  // accept them into a socket the daemon inherited and never serves.
  EXPECT_TRUE(eventually([port] { return port_refuses(port); })) << "port " << port;
  host.close_stdin();  // the daemon returns from main and exits
  EXPECT_TRUE(eventually([daemon] { return process_ended(daemon); }, 30s));
  if (!process_ended(daemon)) kill(daemon, SIGKILL);
}

TEST(Fork, ADaemonLeavesNoHalfRunningServerBehindLinked) {
  daemon_leaves_no_half_server(How::kLinked);
}

TEST(Fork, ADaemonLeavesNoHalfRunningServerBehindPreloaded) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  daemon_leaves_no_half_server(How::kPreload);
}

// Reads log lines until `pid` announces its server; its port, or 0.
uint16_t port_announced_by(ChildProcess& child, int pid) {
  while (std::optional<std::string> line = child.read_line(30s)) {
    int who = 0;
    uint16_t port = 0;
    if (parse_serving(*line, &who, &port) && who == pid) return port;
  }
  return 0;
}

TEST(Fork, ADaemonServesOnAPortOfItsOwnWithCpprofChildren) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  ChildProcess host({program(How::kPreload), "daemon"},
                    env_for(How::kPreload, {{"CPPROF_CHILDREN", "1"}}));
  uint16_t port = 0;
  const int daemon = start_daemon(host, How::kPreload, &port);
  ASSERT_NE(daemon, 0);
  const uint16_t own = port_announced_by(host, daemon);
  ASSERT_NE(own, 0);
  EXPECT_NE(own, port);
  const HttpResponse threads = http_get(own, "/debug/pprof/goroutine?debug=1");
  EXPECT_EQ(threads.status, 200);
  EXPECT_NE(threads.body.find("daemon_work"), std::string::npos) << threads.body;
  const HttpResponse cpu = http_get(own, "/debug/pprof/profile?seconds=1");
  ASSERT_EQ(cpu.status, 200) << cpu.body;
  RawProfile raw;
  ASSERT_TRUE(read_raw(cpu.body, &raw));
  EXPECT_GT(samples_under(raw, "daemon_work"), 0);
  EXPECT_EQ(http_get(own, "/debug/pprof/heap").status, 200);
  host.close_stdin();
  EXPECT_TRUE(eventually([daemon] { return process_ended(daemon); }, 30s));
  if (!process_ended(daemon)) kill(daemon, SIGKILL);
}

// `cpprof run --children ... -- fork_host children K`: reads the log until
// `expected` processes announced their servers; pid -> port. Every line
// read goes to `log` if given.
std::map<int, uint16_t> run_with_children(ChildProcess& run, size_t expected,
                                          std::vector<std::string>* log = nullptr) {
  std::map<int, uint16_t> servers;
  while (servers.size() < expected) {
    std::optional<std::string> line = run.read_line(30s);
    if (!line) break;
    if (log != nullptr) log->push_back(*line);
    int pid = 0;
    uint16_t port = 0;
    if (parse_serving(*line, &pid, &port)) servers[pid] = port;
  }
  return servers;
}

// Ends `fork_host children K` under `run`: every child reaped with status
// 0, and the launched process exits 0.
void expect_children_reaped(ChildProcess& run, int children) {
  run.close_stdin();
  std::optional<std::string> reaped = run.wait_for_line("reaped ", 60s);
  ASSERT_TRUE(reaped.has_value());
  EXPECT_EQ(*reaped, std::to_string(children) + " clean " + std::to_string(children));
  std::optional<int> status = run.wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST(Fork, CpprofRunChildrenServeEachOnAPortOfItsOwn) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  ChildProcess run({built_binary("cpprof"), "run", "--http", "127.0.0.1:0", "--children", "--",
                    program(How::kPreload), "children", "3"},
                   {{"CPPROF_LOG", "/dev/stdout"}});
  const std::map<int, uint16_t> servers = run_with_children(run, 4);
  ASSERT_EQ(servers.size(), 4u);
  EXPECT_NE(servers.count(run.pid()), 0u);  // the launched process, same pid
  std::set<uint16_t> ports;
  for (const auto& [pid, port] : servers) {
    ports.insert(port);
    EXPECT_TRUE(port_answers(port)) << "pid " << pid << " port " << port;
  }
  EXPECT_EQ(ports.size(), 4u);
  expect_children_reaped(run, 3);
}

TEST(Fork, APortAlreadyTakenCostsOneLogLineNotTheProgram) {
  SKIP_IF_PRELOAD_IMPOSSIBLE();
  const int taken = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(taken, 1), 0);
  socklen_t len = sizeof addr;
  getsockname(taken, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string port = std::to_string(ntohs(addr.sin_port));

  ChildProcess run({built_binary("cpprof"), "run", "--http", "127.0.0.1:" + port, "--children",
                    "--", program(How::kPreload), "children", "2"},
                   {{"CPPROF_LOG", "/dev/stdout"}});
  std::vector<std::string> log;
  const std::map<int, uint16_t> servers = run_with_children(run, 2, &log);
  EXPECT_EQ(servers.size(), 2u);  // the two children, on ports of their own
  EXPECT_EQ(servers.count(run.pid()), 0u);
  expect_children_reaped(run, 2);
  close(taken);
  int not_serving = 0;
  for (const std::string& line : log) not_serving += line.find("not serving") != std::string::npos;
  EXPECT_EQ(not_serving, 1) << ::testing::PrintToString(log);
}

}  // namespace
}  // namespace cpprof::test

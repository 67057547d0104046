// examples/chapter29/leaky_service.cc as a whole process: it serves
// /debug/pprof/, its worker threads pile up one per request (and not with
// --fixed), and it exits cleanly on SIGTERM with its leaked workers blocked.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/eventually.h"
#include "support/http_client.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

// Threads of process `pid` named `name` (/proc/PID/task/TID/comm).
int threads_named(pid_t pid, const std::string& name) {
  const std::string tasks_dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* tasks = opendir(tasks_dir.c_str());
  if (tasks == nullptr) return -1;
  int count = 0;
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(tasks_dir + "/" + entry->d_name + "/comm");
    std::string comm_name;
    if (std::getline(comm, comm_name) && comm_name == name) ++count;
  }
  closedir(tasks);
  return count;
}

// The service, started on a free port; port is 0 if it did not come up.
struct Service {
  explicit Service(std::vector<std::string> extra_args) {
    std::vector<std::string> argv = {built_binary("chapter29_leaky_service"), "--http",
                                     "127.0.0.1:0"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    process.emplace(argv, std::map<std::string, std::string>{{"CPPROF_LOG", "off"}});
    const std::optional<std::string> line = process->wait_for_line("leaky service", 30s);
    if (!line) return;
    const std::string marker = "http://127.0.0.1:";
    const size_t at = line->find(marker);
    if (at != std::string::npos)
      port = static_cast<uint16_t>(std::stoi(line->substr(at + marker.size())));
  }

  // SIGTERM, then the exit status (nullopt if it did not exit).
  std::optional<int> stop() {
    process->kill(SIGTERM);
    return process->wait(30s);
  }

  std::optional<ChildProcess> process;
  uint16_t port = 0;
};

TEST(LeakyService, LeavesOneWorkerThreadPerRequest) {
  Service service({"--interval-ms", "0", "--requests", "5"});
  ASSERT_NE(service.port, 0);
  const pid_t pid = service.process->pid();
  EXPECT_TRUE(eventually([&] { return threads_named(pid, "worker") == 5; }))
      << threads_named(pid, "worker");
  EXPECT_TRUE(service.process->wait_for_line("requests: 5 waiting workers: 5", 30s).has_value());
  EXPECT_EQ(threads_named(pid, "worker"), 5);

  const HttpResponse index = http_get(service.port, "/debug/pprof/");
  EXPECT_EQ(index.status, 200) << index.error;

  const std::optional<int> status = service.stop();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

TEST(LeakyService, FixedHandlerLeavesNoWorkerThread) {
  Service service({"--interval-ms", "0", "--requests", "5", "--fixed"});
  ASSERT_NE(service.port, 0);
  EXPECT_TRUE(service.process->wait_for_line("requests: 5 waiting workers: 0", 30s).has_value());
  EXPECT_EQ(threads_named(service.process->pid(), "worker"), 0);
  const std::optional<int> status = service.stop();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

TEST(LeakyService, GoroutineProfileNamesTheBlockedWorkers) {
  Service service({"--interval-ms", "0", "--requests", "3"});
  ASSERT_NE(service.port, 0);
  ASSERT_TRUE(eventually([&] { return threads_named(service.process->pid(), "worker") == 3; }));
  // debug=1: the three workers share one stack, counted once.
  const HttpResponse grouped = http_get(service.port, "/debug/pprof/goroutine?debug=1");
  ASSERT_EQ(grouped.status, 200) << grouped.error << grouped.body;
  EXPECT_NE(grouped.body.find("\n3 @ 0x"), std::string::npos) << grouped.body;
  EXPECT_NE(grouped.body.find("chapter29::wait_for_result"), std::string::npos) << grouped.body;
  // debug=2: every thread by itself, with its name and creator.
  const HttpResponse each = http_get(service.port, "/debug/pprof/goroutine?debug=2");
  ASSERT_EQ(each.status, 200) << each.error << each.body;
  size_t workers = 0;
  size_t created = 0;
  for (size_t at = 0; (at = each.body.find("name \"worker\"]", at)) != std::string::npos; ++at) {
    ++workers;
  }
  const std::string creator = "created by chapter29::start_worker_for_request";
  for (size_t at = 0; (at = each.body.find(creator, at)) != std::string::npos; ++at) ++created;
  EXPECT_EQ(workers, 3u) << each.body;
  EXPECT_EQ(created, 3u) << each.body;
}

}  // namespace
}  // namespace cpprof::test

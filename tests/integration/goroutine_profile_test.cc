// The thread profiles end to end: thread_burner puts threads in known
// places, profiled linked, preloaded and under `cpprof run`;
// /debug/pprof/goroutine (debug=0, 1, 2) and /debug/pprof/threadcreate are
// read back (the protobuf by `go tool pprof -symbolize=none`) and compared
// with where the threads are.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cctype>
#include <chrono>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "burner_target.h"
#include "support/eventually.h"
#include "support/http_client.h"
#include "support/pprof_tool.h"

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

// Whether pprof's `name` is `function`, in any namespace.
bool is_function(const std::string& name, const std::string& function) {
  return name == function ||
         (name.size() > function.size() + 2 &&
          name.compare(name.size() - function.size() - 2, std::string::npos, "::" + function) == 0);
}

// Threads whose stack holds `function`, per pprof.
int64_t threads_under(const RawProfile& raw, const std::string& function) {
  int64_t count = 0;
  for (const RawSample& sample : raw.samples) {
    for (const std::string& name : raw.stack(sample)) {
      if (is_function(name, function)) {
        count += sample.values.at(0);
        break;
      }
    }
  }
  return count;
}

int64_t total(const RawProfile& raw) {
  int64_t sum = 0;
  for (const RawSample& sample : raw.samples) sum += sample.values.at(0);
  return sum;
}

std::string describe(const RawProfile& raw) {
  std::string out;
  for (const RawSample& sample : raw.samples) {
    out += std::to_string(sample.values.at(0)) + " |";
    for (const std::string& name : raw.stack(sample)) out += " " + name + " <";
    out += "\n";
  }
  return out;
}

::testing::AssertionResult fetch_raw(uint16_t port, const std::string& path, RawProfile* raw) {
  HttpResponse response = http_get(port, path);
  if (response.status != 200) {
    return ::testing::AssertionFailure() << path << ": " << response.status << " " << response.body;
  }
  return read_raw(response.body, raw);
}

// Every frame pprof got a name for came from us (-symbolize=none), and none
// of them is cpprof's.
void expect_no_cpprof_frames(const RawProfile& raw) {
  for (const RawSample& sample : raw.samples) {
    for (uint64_t id : sample.location_ids) {
      const RawLocation* location = raw.location(id);
      ASSERT_NE(location, nullptr);
      const RawMapping* mapping = raw.mapping(location->mapping_id);
      if (mapping != nullptr) {
        EXPECT_EQ(mapping->filename.find("libcpprof"), std::string::npos) << describe(raw);
      }
    }
  }
}

int count_matches(const std::string& text, const std::string& pattern) {
  const std::regex re(pattern);
  return static_cast<int>(
      std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

// What thread_burner prints when stdin closes.
struct Ending {
  long eintr = -1;
  long churned = -1;
};

// Ends the program; it must exit normally and say what it saw.
Ending finish(Target& target) {
  Ending ending;
  target.process->close_stdin();
  if (auto eintr = target.process->wait_for_line("eintr ", 30s)) ending.eintr = std::stol(*eintr);
  if (auto churned = target.process->wait_for_line("churned ", 5s)) {
    ending.churned = std::stol(*churned);
  }
  std::optional<int> status = target.process->wait(30s);
  EXPECT_TRUE(status.has_value());
  if (status) {
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
  }
  return ending;
}

// Preloading needs the release build (DESIGN.md). And in the sanitizer
// build, ASan's interceptors (built with frame pointers) sit between libc
// and the program in every blocking call: a blocked thread's walk must find
// the interceptor's frame record by scanning, and stale records in its
// locals can be taken for it (docs/threads.md), so the frames below it are
// not asserted there; counts, texts, EINTR and survival still are.
#ifdef CPPROF_SANITIZE
constexpr bool kExactBlockedStacks = false;
#define SKIP_IF_PRELOADED(how) \
  if ((how) != Launch::kLinked) GTEST_SKIP() << "preloading needs the release build (DESIGN.md)"
#else
constexpr bool kExactBlockedStacks = true;
#define SKIP_IF_PRELOADED(how) (void)0
#endif

class GoroutineProfile : public ::testing::TestWithParam<Launch> {};

// The program: main, 3 threads blocked in a, 5 in b, 2 spinning in c.
TEST_P(GoroutineProfile, CountsEveryThreadWhereItIs) {
  SKIP_IF_PRELOADED(GetParam());
  std::string error;
  Target target =
      start_program(GetParam(), "thread_burner",
                    {"--blocked-a", "3", "--blocked-b", "5", "--spinning-c", "2"}, &error);
  ASSERT_NE(target.port, 0) << error;

  // The blocked threads reach their system calls just after "ready".
  RawProfile raw;
  bool placed = eventually(
      [&] {
        raw = RawProfile();
        return fetch_raw(target.port, "/debug/pprof/goroutine", &raw) &&
               (!kExactBlockedStacks || (threads_under(raw, "thread_blocked_a") == 3 &&
                                         threads_under(raw, "thread_blocked_b") == 5));
      },
      10s);
  EXPECT_TRUE(placed) << describe(raw);
  ASSERT_EQ(raw.sample_types.size(), 1u);
  EXPECT_EQ(raw.sample_types[0].type, "goroutine");
  EXPECT_EQ(raw.sample_types[0].unit, "count");
  EXPECT_EQ(raw.period_type.type, "goroutine");
  EXPECT_EQ(raw.period, 1);
  EXPECT_EQ(threads_under(raw, "thread_spinning_c"), 2) << describe(raw);
  if (kExactBlockedStacks) {
    EXPECT_EQ(threads_under(raw, "main"), 1) << describe(raw);
  }
  EXPECT_EQ(total(raw), 11) << "main + 10 threads; cpprof's own are left out\n" << describe(raw);
  // Blocked threads are read through their system call into the program.
  EXPECT_EQ(threads_under(raw, "read"), 4) << "a's three and main\n" << describe(raw);
  EXPECT_EQ(threads_under(raw, "__pthread_cond_wait_common"), 5) << "b's five\n" << describe(raw);
  expect_no_cpprof_frames(raw);

  // debug=1: Go's grouped text; the blocked ones grouped 3 and 5.
  HttpResponse text = http_get(target.port, "/debug/pprof/goroutine?debug=1");
  ASSERT_EQ(text.status, 200);
  EXPECT_EQ(text.body.rfind("goroutine profile: total 11\n", 0), 0u) << text.body;
  if (kExactBlockedStacks) {
    EXPECT_EQ(count_matches(text.body,
                            "\n3 @( 0x[0-9a-f]+)+\n(#\t[^\n]*\n)*#\t0x[0-9a-f]+\t[^\n]*"
                            "thread_blocked_a\\+0x"),
              1)
        << text.body;
  }
  EXPECT_EQ(count_matches(text.body,
                          "\n5 @( 0x[0-9a-f]+)+\n(#\t[^\n]*\n)*#\t0x[0-9a-f]+\t[^\n]*"
                          "thread_blocked_b\\+0x"),
            1)
      << text.body;

  // debug=2: every thread by id, with its name, state and system call.
  HttpResponse full = http_get(target.port, "/debug/pprof/goroutine?debug=2");
  ASSERT_EQ(full.status, 200);
  EXPECT_EQ(count_matches(full.body, "(^|\n)goroutine [0-9]+ \\["), 11) << full.body;
  EXPECT_EQ(count_matches(full.body, "\\[sleeping, read, name \"blocked-a\"\\]:\n"), 3)
      << full.body;
  EXPECT_EQ(count_matches(full.body, "\\[sleeping, futex, name \"blocked-b\"\\]:\n"), 5)
      << full.body;
  EXPECT_EQ(count_matches(full.body, "name \"spinning-c\"\\]:\n"), 2) << full.body;
  EXPECT_EQ(count_matches(full.body,
                          "\ncreated by \\(anonymous namespace\\)::thread_spawn_all "
                          "in goroutine [0-9]+\n\t[^\n]*thread_burner.cc:[0-9]+ \\+0x"),
            10)
      << full.body;

  // seconds=N: Go's delta; nothing started or ended in the window.
  RawProfile delta;
  ASSERT_TRUE(fetch_raw(target.port, "/debug/pprof/goroutine?seconds=1", &delta));
  EXPECT_EQ(total(delta), 0) << describe(delta);
  EXPECT_GE(delta.duration_nanos, 1000000000);

  // The index page counts them.
  HttpResponse index = http_get(target.port, "/debug/pprof/");
  EXPECT_NE(index.body.find("<td>threads running:</td><td>11</td>"), std::string::npos)
      << index.body;
  finish(target);
}

// threadcreate: the live threads under the function that created them.
TEST_P(GoroutineProfile, ThreadCreateCountsThreadsUnderTheirCreator) {
  SKIP_IF_PRELOADED(GetParam());
  std::string error;
  Target target =
      start_program(GetParam(), "thread_burner",
                    {"--blocked-a", "2", "--blocked-b", "3", "--spinning-c", "1"}, &error);
  ASSERT_NE(target.port, 0) << error;
  RawProfile raw;
  ASSERT_TRUE(fetch_raw(target.port, "/debug/pprof/threadcreate", &raw));
  ASSERT_EQ(raw.sample_types.size(), 1u);
  EXPECT_EQ(raw.sample_types[0].type, "threadcreate");
  EXPECT_EQ(raw.sample_types[0].unit, "count");
  EXPECT_EQ(threads_under(raw, "thread_spawn_all"), 6) << describe(raw);
  EXPECT_EQ(total(raw), 7) << "the main thread counts too, without a creator\n" << describe(raw);
  expect_no_cpprof_frames(raw);
  HttpResponse text = http_get(target.port, "/debug/pprof/threadcreate?debug=1");
  ASSERT_EQ(text.status, 200);
  EXPECT_EQ(text.body.rfind("threadcreate profile: total 7\n", 0), 0u) << text.body;
  EXPECT_NE(text.body.find("thread_spawn_all+0x"), std::string::npos) << text.body;
  finish(target);
}

// Threads blocked in calls that fail on EINTR (epoll_wait, poll and
// nanosleep fail even under SA_RESTART), and one that sleeps 1 ms at a
// time (running, or about to block, whenever a dump looks): a hundred
// dumps, and not one EINTR.
TEST_P(GoroutineProfile, DumpsNeverInterruptBlockingCalls) {
  SKIP_IF_PRELOADED(GetParam());
  std::string error;
  Target target = start_program(GetParam(), "thread_burner", {"--eintr"}, &error);
  ASSERT_NE(target.port, 0) << error;
  for (int i = 0; i < 100; ++i) {
    const std::string path = "/debug/pprof/goroutine?debug=" + std::to_string(i % 3);
    HttpResponse response = http_get(target.port, path);
    ASSERT_EQ(response.status, 200) << path << " " << response.body;
  }
  RawProfile raw;
  ASSERT_TRUE(fetch_raw(target.port, "/debug/pprof/goroutine", &raw));
  for (const char* function : {"eintr_epoll_wait", "eintr_poll", "eintr_nanosleep", "eintr_read"}) {
    if (kExactBlockedStacks) {
      EXPECT_EQ(threads_under(raw, function), 1) << function << "\n" << describe(raw);
    }
  }
  EXPECT_EQ(finish(target).eintr, 0) << "a dump made a blocking call fail with EINTR";
}

// Dumps in a loop while threads are created and exit: every dump answers,
// pprof reads them, and the program carries on and exits normally.
TEST_P(GoroutineProfile, SurvivesThreadsComingAndGoing) {
  SKIP_IF_PRELOADED(GetParam());
  std::string error;
  Target target =
      start_program(GetParam(), "thread_burner", {"--churn", "--blocked-a", "1"}, &error);
  ASSERT_NE(target.port, 0) << error;
  for (int i = 0; i < 100; ++i) {
    const std::string path =
        i % 2 == 0 ? "/debug/pprof/goroutine?debug=2" : "/debug/pprof/goroutine";
    HttpResponse response = http_get(target.port, path);
    ASSERT_EQ(response.status, 200) << path << " " << response.body;
    if (i % 20 == 1) {  // the protobuf ones
      RawProfile raw;
      ASSERT_TRUE(read_raw(response.body, &raw));
      if (kExactBlockedStacks) {
        EXPECT_EQ(threads_under(raw, "thread_blocked_a"), 1) << describe(raw);
      }
    }
  }
  EXPECT_GT(finish(target).churned, 0);
}

std::string param_name(const ::testing::TestParamInfo<Launch>& info) {
  std::string name = launch_name(info.param);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Launches, GoroutineProfile,
                         ::testing::Values(Launch::kLinked, Launch::kPreload, Launch::kCpprofRun),
                         param_name);

}  // namespace
}  // namespace cpprof::test

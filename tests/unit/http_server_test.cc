// The /debug/pprof/ server end to end over real sockets: routes, Go's
// headers, snapshots, windows, deltas, and the worker/io split.
#include "http/server.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "support/eventually.h"
#include "support/http_client.h"
#include "support/http_fake_registry.h"
#include "support/pprof_tool.h"

namespace cpprof::http {
namespace {

using namespace std::chrono_literals;
using test::http_fetch;
using test::http_get;
using test::HttpRequest;
using test::HttpResponse;

using test::eventually;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Go's serveError: status, text/plain, X-Go-Pprof: 1, nosniff, one line.
void expect_go_error(const HttpResponse& r, int status, const std::string& message = "") {
  EXPECT_EQ(r.status, status) << r.error << r.body;
  EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r.header("X-Go-Pprof"), "1");
  EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(r.header("Content-Disposition"), "");
  ASSERT_FALSE(r.body.empty());
  EXPECT_EQ(r.body.back(), '\n');
  EXPECT_EQ(r.body.find('\n'), r.body.size() - 1) << r.body;
  if (!message.empty()) {
    EXPECT_EQ(r.body, message + "\n");
  }
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }

  void start(ServerConfig config) {
    server_.reset();
    config.host = config.host.empty() ? "127.0.0.1" : config.host;
    config.port = 0;
    if (!config.symbol_name) {
      config.symbol_name = [](uint64_t address) -> std::string {
        return address == 0x401000 ? "fake_function" : "";
      };
    }
    if (!config.index_stats) {
      config.index_stats = [] {
        return std::vector<std::pair<std::string, std::string>>{{"cpprof threads", "2"}};
      };
    }
    fake_ = test::make_fake_registry();
    server_ = std::make_unique<Server>(config, fake_.registry);
    std::string error;
    ASSERT_TRUE(server_->start(&error)) << error;
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  test::FakeRegistry fake_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
};

TEST_F(HttpServerTest, IndexListsEveryEntryWithCountsAndStats) {
  HttpResponse r = http_get(port_, "/debug/pprof/");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
  for (const char* name : {"profile", "heap", "goroutine", "busy", "broken", "cmdline", "symbol"}) {
    EXPECT_NE(r.body.find(std::string(">") + name + "</a>"), std::string::npos) << name;
  }
  EXPECT_NE(r.body.find("<td class=\"count\">7</td><td><a href='heap?debug=1'>heap</a>"),
            std::string::npos);
  EXPECT_NE(r.body.find("Fake heap"), std::string::npos);
  EXPECT_NE(r.body.find("goroutine?debug=2"), std::string::npos);
  EXPECT_NE(r.body.find("<td>cpprof threads:</td><td>2</td>"), std::string::npos);
}

TEST_F(HttpServerTest, RedirectsBarePrefixToIndex) {
  HttpResponse r = http_get(port_, "/debug/pprof?x=1");
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.header("Location"), "/debug/pprof/?x=1");
}

TEST_F(HttpServerTest, SnapshotIsGzippedProtobufWithGoHeaders) {
  HttpResponse r = http_get(port_, "/debug/pprof/heap");
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_EQ(r.header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(r.header("Content-Disposition"), "attachment; filename=\"heap\"");
  EXPECT_EQ(r.header("X-Go-Pprof"), "");
  ASSERT_GE(r.body.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(r.body[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(r.body[1]), 0x8b);
  test::RawProfile raw;
  ASSERT_TRUE(test::read_raw(r.body, &raw));
  ASSERT_EQ(raw.samples.size(), 1u);
  EXPECT_EQ(raw.stack(raw.samples[0]), (std::vector<std::string>{"fake_function", "fake_main"}));
  EXPECT_EQ(fake_.heap->opened, 1);
  EXPECT_EQ(fake_.heap->finished, 1);
  EXPECT_EQ(fake_.heap->destroyed, 1);
}

TEST_F(HttpServerTest, DebugLevelServesTheEntrysText) {
  HttpResponse r = http_get(port_, "/debug/pprof/heap?debug=1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r.header("Content-Disposition"), "");
  EXPECT_EQ(r.body, "heap profile debug=1: fake_function\n");
  HttpResponse two = http_get(port_, "/debug/pprof/goroutine?debug=2");
  ASSERT_EQ(two.status, 200);
  EXPECT_EQ(two.body, "goroutine debug=2\n");
}

TEST_F(HttpServerTest, WindowWaitsItsSecondsThenAnswers) {
  auto start = std::chrono::steady_clock::now();
  HttpResponse r = http_get(port_, "/debug/pprof/profile?seconds=1");
  EXPECT_GE(seconds_since(start), 1.0);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Disposition"), "attachment; filename=\"profile\"");
  test::RawProfile raw;
  ASSERT_TRUE(test::read_raw(r.body, &raw));
  EXPECT_EQ(raw.samples.at(0).values, (std::vector<int64_t>{3, 30'000'000}));
  EXPECT_EQ(fake_.cpu->opened, 1);
  EXPECT_EQ(fake_.cpu->finished, 1);
  EXPECT_TRUE(eventually([&] { return fake_.cpu->destroyed == 1; }));
}

TEST_F(HttpServerTest, ConcurrentWindowsBothSucceedWhileIndexAnswers) {
  auto first = std::async(std::launch::async,
                          [&] { return http_get(port_, "/debug/pprof/profile?seconds=2"); });
  auto second = std::async(std::launch::async,
                           [&] { return http_get(port_, "/debug/pprof/profile?seconds=2"); });
  ASSERT_TRUE(eventually([&] { return fake_.cpu->opened == 2; }));
  // Both windows are open and nothing is blocked: other requests are served.
  HttpResponse index = http_get(port_, "/debug/pprof/");
  EXPECT_EQ(index.status, 200);
  HttpResponse heap = http_get(port_, "/debug/pprof/heap");
  EXPECT_EQ(heap.status, 200);
  EXPECT_EQ(fake_.cpu->finished, 0) << "a window ended before its 2 s";
  EXPECT_EQ(first.get().status, 200);
  EXPECT_EQ(second.get().status, 200);
  EXPECT_EQ(fake_.cpu->finished, 2);
}

TEST_F(HttpServerTest, WindowsBeyondMaxWindowsGet503) {
  ServerConfig config;
  config.max_windows = 2;
  start(config);
  std::vector<std::future<HttpResponse>> windows;
  windows.push_back(std::async(std::launch::async,
                               [&] { return http_get(port_, "/debug/pprof/profile?seconds=2"); }));
  windows.push_back(std::async(std::launch::async,
                               [&] { return http_get(port_, "/debug/pprof/heap?seconds=2"); }));
  ASSERT_TRUE(eventually([&] { return fake_.cpu->opened == 1 && fake_.heap->opened == 1; }));
  HttpResponse third = http_get(port_, "/debug/pprof/profile?seconds=1");
  expect_go_error(third, 503);
  EXPECT_NE(third.body.find("max_windows=2"), std::string::npos);
  EXPECT_EQ(fake_.cpu->opened, 1) << "a refused window must not open a collection";
  // Snapshots are not windows: still served.
  EXPECT_EQ(http_get(port_, "/debug/pprof/goroutine").status, 200);
  for (auto& window : windows) EXPECT_EQ(window.get().status, 200);
  // The slots are free again.
  EXPECT_EQ(http_get(port_, "/debug/pprof/profile?seconds=1").status, 200);
}

TEST_F(HttpServerTest, SecondsOnSnapshotEntryAnswersDelta) {
  auto start = std::chrono::steady_clock::now();
  HttpResponse r = http_get(port_, "/debug/pprof/heap?seconds=1");
  EXPECT_GE(seconds_since(start), 1.0);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Disposition"), "attachment; filename=\"heap-delta\"");
  EXPECT_EQ(fake_.heap->opened, 2);
  test::RawProfile raw;
  ASSERT_TRUE(test::read_raw(r.body, &raw));
  // Snapshots 1 and 2 hold 10 and 20: the delta is 10.
  EXPECT_EQ(raw.samples.at(0).values, (std::vector<int64_t>{10, 100'000'000}));
  EXPECT_GE(raw.duration_nanos, 990'000'000);
}

TEST_F(HttpServerTest, SecondsOnEntryWithoutDeltaIs400) {
  expect_go_error(http_get(port_, "/debug/pprof/goroutine?seconds=1"), 400,
                  R"("seconds" parameter is not supported for this profile type)");
  EXPECT_EQ(fake_.goroutine->opened, 0);
}

TEST_F(HttpServerTest, BadParametersAre400AndStartNothing) {
  expect_go_error(http_get(port_, "/debug/pprof/profile?seconds=abc"), 400);
  expect_go_error(http_get(port_, "/debug/pprof/profile?seconds=0"), 400);
  expect_go_error(http_get(port_, "/debug/pprof/profile?seconds=3601"), 400);
  expect_go_error(http_get(port_, "/debug/pprof/profile?debug=1"), 400);
  expect_go_error(http_get(port_, "/debug/pprof/heap?debug=2"), 400);
  expect_go_error(http_get(port_, "/debug/pprof/heap?seconds=1&debug=1"), 400,
                  "seconds and debug params are incompatible");
  expect_go_error(http_get(port_, "/debug/pprof/profile?seconds=1;debug=1"), 400);
  expect_go_error(http_get(port_, "/debug/pprof/%zz"), 400);
  EXPECT_EQ(fake_.cpu->opened, 0);
  EXPECT_EQ(fake_.heap->opened, 0);
}

TEST_F(HttpServerTest, UnknownParamsAndGcAreAccepted) {
  EXPECT_EQ(http_get(port_, "/debug/pprof/heap?gc=1&unknown=x").status, 200);
}

TEST_F(HttpServerTest, UnknownPathsAre404) {
  expect_go_error(http_get(port_, "/debug/pprof/nope"), 404, "Unknown profile");
  expect_go_error(http_get(port_, "/debug/pprof/heap/extra"), 404);
  expect_go_error(http_get(port_, "/elsewhere"), 404);
  expect_go_error(http_get(port_, "/debug/pprof/ui/missing.js"), 404);
}

TEST_F(HttpServerTest, ServesEmbeddedAssets) {
  HttpResponse r = http_get(port_, "/debug/pprof/ui/index.html");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
}

TEST_F(HttpServerTest, RefusalsAndFailuresBecomeGoErrors) {
  expect_go_error(http_get(port_, "/debug/pprof/busy"), 503, "sampler busy");
  expect_go_error(http_get(port_, "/debug/pprof/broken"), 500,
                  "failed to collect profile: disk on fire");
  EXPECT_EQ(http_get(port_, "/debug/pprof/").status, 200) << "the server survives a throw";
}

TEST_F(HttpServerTest, OnlyGetAndHeadExceptSymbol) {
  HttpRequest post;
  post.method = "POST";
  post.target = "/debug/pprof/heap";
  HttpResponse r = http_fetch(port_, post);
  expect_go_error(r, 405);
  EXPECT_EQ(r.header("Allow"), "GET, HEAD");
  post.method = "DELETE";
  post.target = "/debug/pprof/";
  expect_go_error(http_fetch(port_, post), 405);
  HttpRequest head;
  head.method = "HEAD";
  head.target = "/debug/pprof/heap";
  HttpResponse h = http_fetch(port_, head);
  EXPECT_EQ(h.status, 200) << h.error;
  EXPECT_EQ(h.header("Content-Type"), "application/octet-stream");
  EXPECT_GT(std::stoul(h.header("Content-Length")), 0u);
  EXPECT_TRUE(h.body.empty());
}

TEST_F(HttpServerTest, CmdlineIsOurArgvJoinedWithNul) {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::stringstream expected;
  expected << in.rdbuf();
  std::string want = expected.str();
  ASSERT_FALSE(want.empty());
  want.pop_back();  // the kernel ends every argument with NUL; Go only separates
  HttpResponse r = http_get(port_, "/debug/pprof/cmdline");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, want);
}

TEST_F(HttpServerTest, SymbolSpeaksGoProtocol) {
  EXPECT_EQ(http_get(port_, "/debug/pprof/symbol").body, "num_symbols: 1\n");
  HttpResponse get = http_get(port_, "/debug/pprof/symbol?0x401000+0x999");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(get.body, "num_symbols: 1\n0x401000 fake_function\n");
  HttpRequest post;
  post.method = "POST";
  post.target = "/debug/pprof/symbol";
  post.body = "0x999+0x401000+0x401000";
  EXPECT_EQ(http_fetch(port_, post).body,
            "num_symbols: 1\n0x401000 fake_function\n0x401000 fake_function\n");
}

TEST_F(HttpServerTest, SymbolPostHonoursExpectContinue) {
  // curl sends "Expect: 100-continue" for bodies over 1 KiB and waits for it.
  std::string body = "0x401000";
  for (int i = 0; i < 200; ++i) body += "+0x999";
  test::HttpConnection connection(port_);
  ASSERT_TRUE(
      connection.send_raw("POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\n"
                          "Expect: 100-continue\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n"));
  HttpResponse go_on = connection.read_response(5s);
  EXPECT_EQ(go_on.status, 100) << go_on.error;
  ASSERT_TRUE(connection.send_raw(body));
  HttpResponse answer = connection.read_response();
  EXPECT_EQ(answer.status, 200) << answer.error;
  EXPECT_EQ(answer.body, "num_symbols: 1\n0x401000 fake_function\n");
}

TEST_F(HttpServerTest, GoToolPprofFetchesWindowsAndDeltas) {
  const std::string base = "http://127.0.0.1:" + std::to_string(port_) + "/debug/pprof/";
  test::RawProfile cpu;
  ASSERT_TRUE(test::read_raw_file(base + "profile?seconds=1", &cpu));
  ASSERT_EQ(cpu.samples.size(), 1u);
  EXPECT_EQ(cpu.stack(cpu.samples[0]), (std::vector<std::string>{"fake_function", "fake_main"}));
  test::RawProfile delta;
  ASSERT_TRUE(test::read_raw_file(base + "heap?seconds=1", &delta));
  EXPECT_EQ(delta.samples.at(0).values, (std::vector<int64_t>{10, 100'000'000}));
}

TEST_F(HttpServerTest, KeepAliveAndPipelinedRequestsShareAConnection) {
  test::HttpConnection connection(port_);
  ASSERT_TRUE(connection.connected());
  HttpRequest request;
  request.keep_alive = true;
  for (const char* target : {"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"}) {
    request.target = target;
    EXPECT_EQ(connection.request(request).status, 200) << target;
  }
  // A second request sent while the first one's window is still open is
  // kept and answered after it.
  ASSERT_TRUE(
      connection.send_raw("GET /debug/pprof/profile?seconds=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /debug/pprof/goroutine?debug=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpResponse window = connection.read_response();
  EXPECT_EQ(window.status, 200) << window.error;
  EXPECT_EQ(window.header("Content-Type"), "application/octet-stream");
  HttpResponse next = connection.read_response();
  EXPECT_EQ(next.status, 200) << next.error;
  EXPECT_EQ(next.body, "goroutine debug=1\n");
}

TEST_F(HttpServerTest, ThreadsAreNamedAndSpawnedThroughConfig) {
  auto spawned = std::make_shared<std::vector<std::string>>();
  ServerConfig config;
  config.spawn_thread = [spawned](std::string name, std::function<void()> body) {
    spawned->push_back(name);
    return std::thread(std::move(body));
  };
  start(config);
  EXPECT_EQ(*spawned, (std::vector<std::string>{"cpprof-http", "cpprof-worker"}));
  auto thread_names = [] {
    std::string all;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      std::getline(comm, name);
      all += name + "\n";
    }
    return all;
  };
  EXPECT_TRUE(eventually([&] {
    std::string names = thread_names();
    return names.find("cpprof-http\n") != std::string::npos &&
           names.find("cpprof-worker\n") != std::string::npos;
  }));
}

}  // namespace
}  // namespace cpprof::http

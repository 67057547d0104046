// What keeps the /debug/pprof/ server safe inside someone else's process:
// bearer token, loopback-only binding, connection/size/time limits, early
// release of abandoned windows, no SIGPIPE, and a stop() that cleans up.
#include "http/server.h"

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <future>
#include <iostream>
#include <thread>

#include "support/eventually.h"
#include "support/http_client.h"
#include "support/http_fake_registry.h"

namespace cpprof::http {
namespace {

using namespace std::chrono_literals;
using test::http_get;
using test::HttpRequest;
using test::HttpResponse;

using test::eventually;

struct Running {
  test::FakeRegistry fake = test::make_fake_registry();
  std::unique_ptr<Server> server;
  uint16_t port = 0;
};

std::unique_ptr<Running> run(ServerConfig config) {
  auto running = std::make_unique<Running>();
  config.port = 0;
  running->server = std::make_unique<Server>(config, running->fake.registry);
  std::string error;
  EXPECT_TRUE(running->server->start(&error)) << error;
  running->port = running->server->port();
  return running;
}

TEST(HttpServerAuth, TokenIsRequiredWhenConfigured) {
  ServerConfig config;
  config.token = "s3cret";
  auto r = run(config);
  HttpResponse none = http_get(r->port, "/debug/pprof/");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.header("X-Go-Pprof"), "1");
  EXPECT_EQ(none.header("WWW-Authenticate"), "Bearer realm=\"cpprof\"");
  EXPECT_EQ(http_get(r->port, "/debug/pprof/heap", {{"Authorization", "Bearer wrong"}}).status,
            401);
  EXPECT_EQ(http_get(r->port, "/debug/pprof/heap", {{"Authorization", "Bearer s3cre"}}).status,
            401);
  EXPECT_EQ(http_get(r->port, "/debug/pprof/heap", {{"Authorization", "Bearer s3cret"}}).status,
            200);
  EXPECT_EQ(http_get(r->port, "/debug/pprof/", {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(r->fake.heap->opened, 1) << "unauthenticated requests must collect nothing";
}

TEST(HttpServerBind, NonLoopbackIsRefusedWithoutAllowRemote) {
  ServerConfig config;
  config.host = "0.0.0.0";
  config.port = 0;
  Server server(config, std::make_shared<Registry>());
  std::string error;
  EXPECT_FALSE(server.start(&error));
  EXPECT_NE(error.find("allow_remote"), std::string::npos) << error;
}

TEST(HttpServerBind, NonLoopbackIsAllowedWhenAskedFor) {
  ServerConfig config;
  config.host = "0.0.0.0";
  config.allow_remote = true;
  config.port = 0;
  Server server(config, std::make_shared<Registry>());
  std::string error;
  ASSERT_TRUE(server.start(&error)) << error;
  EXPECT_EQ(http_get(server.port(), "/debug/pprof/").status, 200);
}

TEST(HttpServerBind, PortInUseIsAnErrorNotACrash) {
  auto first = run({});
  ServerConfig config;
  config.port = first->port;
  Server second(config, std::make_shared<Registry>());
  std::string error;
  EXPECT_FALSE(second.start(&error));
  EXPECT_NE(error.find(std::to_string(first->port)), std::string::npos) << error;
  EXPECT_EQ(http_get(first->port, "/debug/pprof/").status, 200);
}

TEST(HttpServerLimits, IdleConnectionsMakeRoomForANewOneOldestFirst) {
  ServerConfig config;
  config.max_connections = 2;
  auto r = run(config);
  HttpRequest request;
  request.target = "/debug/pprof/";
  request.keep_alive = true;
  test::HttpConnection a(r->port);
  ASSERT_EQ(a.request(request).status, 200);
  std::this_thread::sleep_for(10ms);
  test::HttpConnection b(r->port);
  ASSERT_EQ(b.request(request).status, 200);
  // Both slots hold idle keep-alive connections: the third is served, and
  // the one idle longest (a) is the one closed for it.
  test::HttpConnection c(r->port);
  EXPECT_EQ(c.request(request).status, 200);
  EXPECT_TRUE(a.wait_for_close(5s));
  EXPECT_EQ(b.request(request).status, 200);
}

TEST(HttpServerLimits, ConnectionsBeyondMaxGet503WhenEveryOneIsBeingAnswered) {
  ServerConfig config;
  config.max_connections = 2;
  auto r = run(config);
  // Two connections wait for the answer of a 3-second window.
  const char* window = "GET /debug/pprof/profile?seconds=3 HTTP/1.1\r\nHost: x\r\n\r\n";
  test::HttpConnection a(r->port);
  test::HttpConnection b(r->port);
  ASSERT_TRUE(a.send_raw(window));
  ASSERT_TRUE(b.send_raw(window));
  std::this_thread::sleep_for(300ms);
  test::HttpConnection c(r->port);
  HttpRequest request;
  request.target = "/debug/pprof/";
  HttpResponse refused = c.request(request);
  EXPECT_EQ(refused.status, 503) << refused.error;
  EXPECT_EQ(refused.body, "too many connections\n");
  EXPECT_EQ(a.read_response(10s).status, 200);
  EXPECT_TRUE(eventually([&] { return http_get(r->port, "/debug/pprof/").status == 200; }));
}

TEST(HttpServerLimits, TwoHundredIdleConnectionsDoNotKeepAProfileRequestOut) {
  auto r = run({});  // the default limit
  std::vector<std::unique_ptr<test::HttpConnection>> idle;
  for (int i = 0; i < 200; ++i) {
    idle.push_back(std::make_unique<test::HttpConnection>(r->port));
    ASSERT_TRUE(idle.back()->connected());
  }
  std::this_thread::sleep_for(200ms);  // all accepted
  HttpResponse answer = http_get(r->port, "/debug/pprof/profile?seconds=1");
  EXPECT_EQ(answer.status, 200) << answer.error;
}

TEST(HttpServerLimits, OversizedHeaderIs431AndBodyIs413) {
  auto r = run({});
  HttpRequest big_header;
  big_header.target = "/debug/pprof/";
  big_header.headers = {{"X-Padding", std::string(20 * 1024, 'a')}};
  EXPECT_EQ(test::http_fetch(r->port, big_header).status, 431);
  // A declared length over the limit is refused before any body is read.
  test::HttpConnection declared(r->port);
  ASSERT_TRUE(declared.send_raw(
      "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n"));
  HttpResponse too_long = declared.read_response(5s);
  EXPECT_EQ(too_long.status, 413) << too_long.error;
  EXPECT_EQ(too_long.header("X-Go-Pprof"), "1");
  HttpRequest big_body;
  big_body.method = "POST";
  big_body.target = "/debug/pprof/symbol";
  big_body.body = std::string(65 * 1024, '1');
  HttpResponse answer = test::http_fetch(r->port, big_body);
  // The server may close before reading the whole body; then the client
  // sees a reset instead of the 413, which is just as much a refusal.
  if (answer.status != 0) {
    EXPECT_EQ(answer.status, 413);
  } else {
    std::cerr << "413 not seen: " << answer.error << "\n";
  }
  EXPECT_EQ(http_get(r->port, "/debug/pprof/").status, 200);
}

TEST(HttpServerLimits, SlowClientIsDroppedAfterIdleTimeout) {
  ServerConfig config;
  config.idle_timeout_seconds = 1;
  auto r = run(config);
  test::HttpConnection slow(r->port);
  ASSERT_TRUE(slow.connected());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(slow.send_raw("GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\n"));  // never finished
  EXPECT_TRUE(slow.wait_for_close(10s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
  EXPECT_EQ(http_get(r->port, "/debug/pprof/").status, 200);
}

TEST(HttpServerWindows, DisconnectDropsTheCollectionEarly) {
  auto r = run({});
  test::HttpConnection client(r->port);
  ASSERT_TRUE(client.send_raw("GET /debug/pprof/profile?seconds=30 HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(eventually([&] { return r->fake.cpu->opened == 1; }));
  client.reset();
  EXPECT_TRUE(eventually([&] { return r->fake.cpu->destroyed == 1; }))
      << "the collection lives on after its client left";
  EXPECT_EQ(r->fake.cpu->finished, 0);
  // The delta of a snapshot entry is dropped the same way, and a half-close
  // (EOF) counts as leaving, as it does for Go.
  test::HttpConnection delta(r->port);
  ASSERT_TRUE(delta.send_raw("GET /debug/pprof/heap?seconds=30 HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(eventually([&] { return r->fake.heap->destroyed == 1; }));
  delta.close();
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(r->fake.heap->opened, 1) << "no second snapshot after the client left";
  // Both slots are free again.
  EXPECT_EQ(http_get(r->port, "/debug/pprof/profile?seconds=1").status, 200);
}

TEST(HttpServerWindows, WritingToAVanishedClientRaisesNoSigpipe) {
  struct sigaction current {};
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &current), 0);
  ASSERT_EQ(current.sa_handler, SIG_DFL) << "the test proves nothing if SIGPIPE is ignored";
  auto r = run({});
  for (int i = 0; i < 6; ++i) {
    test::HttpConnection client(r->port);
    ASSERT_TRUE(client.send_raw("GET /debug/pprof/big HTTP/1.1\r\nHost: x\r\n\r\n"));
    // Gone before the several-MiB answer is written. After a plain close the
    // server's first write still succeeds and a later one fails with EPIPE,
    // the error that raises SIGPIPE without MSG_NOSIGNAL; after a reset the
    // write fails with ECONNRESET.
    if (i % 2 == 0) {
      client.close();
    } else {
      client.reset();
    }
  }
  HttpResponse big = http_get(r->port, "/debug/pprof/big");
  EXPECT_EQ(big.status, 200);
  EXPECT_GT(big.body.size(), 4u << 20);
  EXPECT_EQ(http_get(r->port, "/debug/pprof/").status, 200);
}

TEST(HttpServerStop, StopClosesConnectionsAndDropsOpenWindows) {
  auto r = run({});
  auto pending = std::async(std::launch::async,
                            [&] { return http_get(r->port, "/debug/pprof/profile?seconds=30"); });
  ASSERT_TRUE(eventually([&] { return r->fake.cpu->opened == 1; }));
  auto start = std::chrono::steady_clock::now();
  r->server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s) << "stop() waited for the window";
  EXPECT_EQ(r->fake.cpu->destroyed, 1) << "stop() returned with a collection still open";
  EXPECT_EQ(r->fake.cpu->finished, 0);
  HttpResponse dropped = pending.get();
  EXPECT_EQ(dropped.status, 0);
  EXPECT_EQ(http_get(r->port, "/debug/pprof/", {}, 2s).status, 0) << "still listening";
  r->server->stop();  // idempotent
}

TEST(HttpServerStop, DestructorStopsARunningServer) {
  auto fake = test::make_fake_registry();
  uint16_t port = 0;
  {
    ServerConfig config;
    config.port = 0;
    Server server(config, fake.registry);
    ASSERT_TRUE(server.start(nullptr));
    port = server.port();
    EXPECT_EQ(http_get(port, "/debug/pprof/").status, 200);
  }
  EXPECT_EQ(http_get(port, "/debug/pprof/", {}, 2s).status, 0);
}

}  // namespace
}  // namespace cpprof::http

// The pure pieces behind the routes: bearer token, listen address, Go's
// /symbol and /cmdline forms, and the index page.
#include <gtest/gtest.h>

#include <string>

#include "http/auth.h"
#include "http/index_page.h"
#include "http/listen_address.h"
#include "http/plain_endpoints.h"
#include "http/registry.h"
#include "ui/assets.h"

namespace cpprof::http {
namespace {

TEST(HttpBearerToken, MatchesOnlyTheExactToken) {
  EXPECT_TRUE(bearer_token_matches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(bearer_token_matches("bearer s3cret", "s3cret"));
  EXPECT_TRUE(bearer_token_matches("BEARER   s3cret ", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Bearer s3cret2", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Bearer S3cret", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Bearers3cret", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("s3cret", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("", "s3cret"));
  EXPECT_FALSE(bearer_token_matches("Bearer ", ""));
}

TEST(HttpBearerToken, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equals("", ""));
  EXPECT_TRUE(constant_time_equals("abc", "abc"));
  EXPECT_FALSE(constant_time_equals("abc", "abd"));
  EXPECT_FALSE(constant_time_equals("abc", "ab"));
  EXPECT_FALSE(constant_time_equals("ab", "abc"));
  EXPECT_FALSE(constant_time_equals(std::string("a\0b", 3), "a"));
}

TEST(HttpListenAddress, LoopbackIsAllowedByDefault) {
  boost::asio::ip::address address;
  std::string error;
  for (const char* host :
       {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(resolve_listen_address(host, false, &address, &error)) << host << ": " << error;
    EXPECT_TRUE(is_loopback(address)) << host;
  }
}

TEST(HttpListenAddress, OtherAddressesNeedAllowRemote) {
  boost::asio::ip::address address;
  std::string error;
  for (const char* host : {"0.0.0.0", "::", "10.1.2.3", "192.168.0.1", "::ffff:10.0.0.1"}) {
    EXPECT_FALSE(resolve_listen_address(host, false, &address, &error)) << host;
    EXPECT_NE(error.find("allow_remote"), std::string::npos) << error;
    EXPECT_TRUE(resolve_listen_address(host, true, &address, &error)) << host << ": " << error;
  }
}

TEST(HttpListenAddress, HostNamesAreNotResolved) {
  boost::asio::ip::address address;
  std::string error;
  EXPECT_FALSE(resolve_listen_address("example.com", true, &address, &error));
  EXPECT_NE(error.find("not an IP address"), std::string::npos) << error;
  EXPECT_FALSE(resolve_listen_address("127.0.0.1:80", true, &address, &error));
}

TEST(HttpCmdline, JoinsArgumentsWithNulAsGo) {
  using namespace std::string_literals;
  EXPECT_EQ(cmdline_from_proc("./server\0--port\0006060\0"s), "./server\0--port\0006060"s);
  EXPECT_EQ(cmdline_from_proc(""), "");
  std::string ours = read_cmdline();
  ASSERT_FALSE(ours.empty());
  EXPECT_NE(ours.find("http_endpoints_test"), std::string::npos);
  EXPECT_NE(ours.back(), '\0');
}

TEST(HttpSymbolAddress, ParsesLikeStrconvParseUintBaseZero) {
  uint64_t value = 0;
  EXPECT_TRUE(parse_go_uint("0x4005d0", &value));
  EXPECT_EQ(value, 0x4005d0u);
  EXPECT_TRUE(parse_go_uint("0XFF", &value));
  EXPECT_EQ(value, 255u);
  EXPECT_TRUE(parse_go_uint("1234", &value));
  EXPECT_EQ(value, 1234u);
  EXPECT_TRUE(parse_go_uint("017", &value));
  EXPECT_EQ(value, 15u);
  EXPECT_TRUE(parse_go_uint("0o17", &value));
  EXPECT_EQ(value, 15u);
  EXPECT_TRUE(parse_go_uint("0b101", &value));
  EXPECT_EQ(value, 5u);
  EXPECT_TRUE(parse_go_uint("0", &value));
  EXPECT_EQ(value, 0u);
  EXPECT_TRUE(parse_go_uint("0xffffffffffffffff", &value));
  EXPECT_EQ(value, UINT64_MAX);
  EXPECT_FALSE(parse_go_uint("0x10000000000000000", &value));
  EXPECT_FALSE(parse_go_uint("", &value));
  EXPECT_FALSE(parse_go_uint("0x", &value));
  EXPECT_FALSE(parse_go_uint("08", &value));
  EXPECT_FALSE(parse_go_uint("-1", &value));
  EXPECT_FALSE(parse_go_uint("12z", &value));
}

std::string fake_symbol(uint64_t address) {
  if (address == 0x1000) return "main";
  if (address == 0x2000) return "worker_loop";
  return "";
}

TEST(HttpSymbol, AnswersGoSymbolProtocol) {
  EXPECT_EQ(symbol_body("", fake_symbol), "num_symbols: 1\n");
  EXPECT_EQ(symbol_body("0x1000", fake_symbol), "num_symbols: 1\n0x1000 main\n");
  EXPECT_EQ(symbol_body("0x1000+0x2000", fake_symbol),
            "num_symbols: 1\n0x1000 main\n0x2000 worker_loop\n");
  // Unknown, zero and unparsable addresses are skipped, as Go skips them.
  EXPECT_EQ(symbol_body("0x3000+0+junk+0x2000+", fake_symbol),
            "num_symbols: 1\n0x2000 worker_loop\n");
  // Go prints %#x: lowercase hex whatever the request's spelling.
  EXPECT_EQ(symbol_body("4096", fake_symbol), "num_symbols: 1\n0x1000 main\n");
  EXPECT_EQ(symbol_body("0X1000", fake_symbol), "num_symbols: 1\n0x1000 main\n");
}

TEST(HttpSymbol, SaysNoSymbolsWithoutALookupFunction) {
  EXPECT_EQ(symbol_body("0x1000", nullptr), "num_symbols: 0\n");
}

Registry sample_registry() {
  Registry registry;
  ProfileEntry heap;
  heap.name = "heap";
  heap.description = "Live <objects> & bytes";
  heap.count = [] { return std::optional<int64_t>(42); };
  heap.text_debug_levels = {1};
  heap.write_text = [](const profile::Profile&, int) { return std::string("text"); };
  registry.add(heap);
  ProfileEntry cpu;
  cpu.name = "profile";
  cpu.description = "CPU profile";
  cpu.default_seconds = 30;
  registry.add(cpu);
  ProfileEntry goroutine;
  goroutine.name = "goroutine";
  goroutine.description = "Stacks of all threads";
  goroutine.count = []() -> std::optional<int64_t> { throw std::runtime_error("boom"); };
  goroutine.text_debug_levels = {1, 2};
  goroutine.write_text = heap.write_text;
  registry.add(goroutine);
  return registry;
}

TEST(HttpRegistry, FindsEntriesAndLaterAddReplaces) {
  Registry registry = sample_registry();
  ASSERT_NE(registry.find("heap"), nullptr);
  EXPECT_EQ(registry.find("nope"), nullptr);
  ProfileEntry replacement;
  replacement.name = "heap";
  replacement.description = "replaced";
  registry.add(replacement);
  EXPECT_EQ(registry.entries().size(), 3u);
  EXPECT_EQ(registry.find("heap")->description, "replaced");
}

TEST(HttpIndexPage, ListsEntriesCountsLinksAndStats) {
  Registry registry = sample_registry();
  std::string page = render_index(ui::asset("index.html"), registry,
                                  {{"cpprof threads", "2"}, {"dropped <samples>", "0"}});
  EXPECT_NE(page.find("<td class=\"count\">42</td><td><a href='heap?debug=1'>heap</a>"),
            std::string::npos)
      << page;
  // No text form: Go's "?debug=1" link would be a 400 here, so none.
  EXPECT_NE(page.find("<a href='profile'>profile</a>"), std::string::npos);
  // A count that throws shows nothing rather than breaking the page.
  EXPECT_NE(page.find("<td class=\"count\"></td><td><a href='goroutine?debug=1'>"),
            std::string::npos);
  EXPECT_NE(page.find("<a href='cmdline'>cmdline</a>"), std::string::npos);
  EXPECT_NE(page.find("<a href='symbol'>symbol</a>"), std::string::npos);
  EXPECT_NE(page.find("goroutine?debug=2"), std::string::npos);
  EXPECT_NE(page.find("Live &lt;objects&gt; &amp; bytes"), std::string::npos);
  EXPECT_NE(page.find("<td>dropped &lt;samples&gt;:</td><td>0</td>"), std::string::npos);
  EXPECT_EQ(page.find("<!--cpprof:"), std::string::npos);
  // Sorted by name, as Go sorts them.
  EXPECT_LT(page.find(">cmdline</a>"), page.find(">goroutine</a>"));
  EXPECT_LT(page.find(">goroutine</a>"), page.find(">heap</a>"));
  EXPECT_LT(page.find(">heap</a>"), page.find(">profile</a>"));
}

TEST(HttpIndexPage, StillRendersWithoutTemplate) {
  std::string page = render_index("", sample_registry(), {});
  EXPECT_NE(page.find(">heap</a>"), std::string::npos);
}

TEST(HttpIndexPage, HtmlEscapeEscapesLikeGo) {
  EXPECT_EQ(html_escape("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&#34;&amp;&#34;&lt;/a&gt;");
}

}  // namespace
}  // namespace cpprof::http

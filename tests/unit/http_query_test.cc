// The query rules of /debug/pprof/<name>: Go's where Go checks, 400 where
// Go would silently fall back.
#include "http/query.h"

#include <gtest/gtest.h>

#include <vector>

namespace cpprof::http {
namespace {

constexpr int kMaxSeconds = 3600;
const std::vector<int> kGoroutineLevels = {1, 2};
const std::vector<int> kNoText = {};

struct Checked {
  bool ok = false;
  ProfileParams params;
  std::string error;
};

Checked check(std::string_view target, const std::vector<int>& levels = kGoroutineLevels) {
  Checked out;
  Target parsed;
  if (!parse_target(target, &parsed, &out.error)) return out;
  out.ok = check_profile_params(parsed.params, kMaxSeconds, levels, &out.params, &out.error);
  return out;
}

TEST(HttpTarget, SplitsPathAndDecodesQuery) {
  Target target;
  std::string error;
  ASSERT_TRUE(parse_target("/debug/pprof/heap?seconds=5&x=a+b%20c&flag", &target, &error));
  EXPECT_EQ(target.path, "/debug/pprof/heap");
  EXPECT_EQ(target.raw_query, "seconds=5&x=a+b%20c&flag");
  ASSERT_EQ(target.params.size(), 3u);
  EXPECT_EQ(target.params[0].key, "seconds");
  EXPECT_EQ(target.params[0].value, "5");
  EXPECT_EQ(target.params[1].value, "a b c");
  EXPECT_EQ(target.params[2].key, "flag");
  EXPECT_EQ(target.params[2].value, "");
}

TEST(HttpTarget, DecodesPathButKeepsPlus) {
  Target target;
  std::string error;
  ASSERT_TRUE(parse_target("/debug/pprof/a%2Bb+c", &target, &error));
  EXPECT_EQ(target.path, "/debug/pprof/a+b+c");
  EXPECT_TRUE(target.params.empty());
}

TEST(HttpTarget, AcceptsAbsoluteForm) {
  Target target;
  std::string error;
  ASSERT_TRUE(parse_target("http://127.0.0.1:6060/debug/pprof/?debug=1", &target, &error));
  EXPECT_EQ(target.path, "/debug/pprof/");
  EXPECT_EQ(target.raw_query, "debug=1");
  ASSERT_TRUE(parse_target("http://127.0.0.1:6060", &target, &error));
  EXPECT_EQ(target.path, "/");
}

TEST(HttpTarget, RejectsMalformedEscapesAndForms) {
  Target target;
  std::string error;
  EXPECT_FALSE(parse_target("/debug/pprof/%zz", &target, &error));
  EXPECT_FALSE(parse_target("/debug/pprof/%4", &target, &error));
  EXPECT_FALSE(parse_target("/debug/pprof/heap?seconds=%", &target, &error));
  EXPECT_FALSE(parse_target("/debug/pprof/heap?%g1=2", &target, &error));
  EXPECT_FALSE(parse_target("*", &target, &error));
  EXPECT_FALSE(parse_target("", &target, &error));
  EXPECT_FALSE(parse_target("debug/pprof/", &target, &error));
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST(HttpTarget, RejectsSemicolonSeparators) {
  Target target;
  std::string error;
  EXPECT_FALSE(parse_target("/debug/pprof/profile?seconds=5;debug=1", &target, &error));
  EXPECT_NE(error.find("semicolon"), std::string::npos);
  // An escaped ';' is data, not a separator.
  EXPECT_TRUE(parse_target("/debug/pprof/profile?x=%3B", &target, &error));
}

TEST(HttpTarget, FindParamFirstValueWinsAsInGo) {
  Target target;
  std::string error;
  ASSERT_TRUE(parse_target("/p?debug=1&debug=2", &target, &error));
  const std::string* debug = find_param(target.params, "debug");
  ASSERT_NE(debug, nullptr);
  EXPECT_EQ(*debug, "1");
  EXPECT_EQ(find_param(target.params, "seconds"), nullptr);
}

TEST(HttpQueryInt, AcceptsWhatGoParseIntAccepts) {
  int64_t value = 0;
  EXPECT_TRUE(parse_int("42", &value));
  EXPECT_EQ(value, 42);
  EXPECT_TRUE(parse_int("+7", &value));
  EXPECT_EQ(value, 7);
  EXPECT_TRUE(parse_int("-3", &value));
  EXPECT_EQ(value, -3);
  EXPECT_TRUE(parse_int("9223372036854775807", &value));
  EXPECT_EQ(value, INT64_MAX);
  EXPECT_TRUE(parse_int("-9223372036854775808", &value));
  EXPECT_EQ(value, INT64_MIN);
  EXPECT_FALSE(parse_int("9223372036854775808", &value));
  EXPECT_FALSE(parse_int("", &value));
  EXPECT_FALSE(parse_int("+", &value));
  EXPECT_FALSE(parse_int(" 1", &value));
  EXPECT_FALSE(parse_int("1s", &value));
  EXPECT_FALSE(parse_int("0x10", &value));
  EXPECT_FALSE(parse_int("1.5", &value));
}

TEST(HttpProfileParams, NoParametersMeanSnapshotInProtobuf) {
  Checked c = check("/debug/pprof/heap");
  ASSERT_TRUE(c.ok) << c.error;
  EXPECT_EQ(c.params.seconds, 0);
  EXPECT_EQ(c.params.debug, 0);
  EXPECT_FALSE(c.params.gc);
}

TEST(HttpProfileParams, SecondsMustBeAnIntegerFromOneToMax) {
  EXPECT_EQ(check("/p?seconds=1").params.seconds, 1);
  EXPECT_EQ(check("/p?seconds=3600").params.seconds, 3600);
  for (const char* bad :
       {"/p?seconds=0", "/p?seconds=-1", "/p?seconds=3601", "/p?seconds=abc", "/p?seconds=1.5",
        "/p?seconds=10s", "/p?seconds=99999999999999999999", "/p?seconds=+"}) {
    Checked c = check(bad);
    EXPECT_FALSE(c.ok) << bad;
    EXPECT_NE(c.error.find("seconds"), std::string::npos) << bad;
    EXPECT_EQ(c.error.find('\n'), std::string::npos);
  }
}

TEST(HttpProfileParams, EmptyValueCountsAsAbsentAsInGo) {
  Checked c = check("/p?seconds=&debug=");
  ASSERT_TRUE(c.ok) << c.error;
  EXPECT_EQ(c.params.seconds, 0);
  EXPECT_EQ(c.params.debug, 0);
}

TEST(HttpProfileParams, DebugMustBeZeroOrAnOfferedLevel) {
  EXPECT_EQ(check("/p?debug=0").params.debug, 0);
  EXPECT_EQ(check("/p?debug=1").params.debug, 1);
  EXPECT_EQ(check("/p?debug=2").params.debug, 2);
  EXPECT_TRUE(check("/p?debug=0", kNoText).ok);
  for (const char* bad : {"/p?debug=3", "/p?debug=-1", "/p?debug=x", "/p?debug=1.0"}) {
    Checked c = check(bad);
    EXPECT_FALSE(c.ok) << bad;
    EXPECT_NE(c.error.find("debug"), std::string::npos) << bad;
  }
  Checked no_text = check("/p?debug=1", kNoText);
  EXPECT_FALSE(no_text.ok);
  EXPECT_NE(no_text.error.find("supports 0"), std::string::npos) << no_text.error;
}

TEST(HttpProfileParams, SecondsWithNonzeroDebugIsRejectedAsInGo) {
  Checked c = check("/p?seconds=5&debug=1");
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.error, "seconds and debug params are incompatible");
  Checked zero = check("/p?seconds=5&debug=0");
  ASSERT_TRUE(zero.ok) << zero.error;
  EXPECT_EQ(zero.params.seconds, 5);
}

TEST(HttpProfileParams, UnknownParamsAreIgnoredAndGcIsAccepted) {
  Checked c = check("/p?gc=1&foo=bar&seconds=2&_=123");
  ASSERT_TRUE(c.ok) << c.error;
  EXPECT_TRUE(c.params.gc);
  EXPECT_EQ(c.params.seconds, 2);
  // Go ignores a gc value it cannot parse; so do we.
  Checked odd_gc = check("/p?gc=yes");
  ASSERT_TRUE(odd_gc.ok);
  EXPECT_FALSE(odd_gc.params.gc);
}

TEST(HttpProfileParams, RespectsConfiguredMaximum) {
  Target target;
  std::string error;
  ASSERT_TRUE(parse_target("/p?seconds=11", &target, &error));
  ProfileParams params;
  EXPECT_FALSE(check_profile_params(target.params, 10, kNoText, &params, &error));
  EXPECT_NE(error.find("at most 10"), std::string::npos) << error;
}

}  // namespace
}  // namespace cpprof::http

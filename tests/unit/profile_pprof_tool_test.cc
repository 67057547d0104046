// The test helper that runs `go tool pprof` and parses its -raw text: every
// profile test trusts it, so it is tested on its own.
#include "support/pprof_tool.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include "profile/pprof_encoder.h"

namespace cpprof::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Real `go tool pprof -raw` output (Go 1.19), extended with a folded,
// inlined location with system names, and a mapping with a build id.
constexpr std::string_view kRawText =
    "Comment: hello world\n"
    "PeriodType: space bytes\n"
    "Period: 524288\n"
    "Time: 2023-11-14 22:13:20.5 +0000 UTC\n"
    "Duration: 250m\n"
    "Samples:\n"
    "alloc_objects/count alloc_space/bytes[dflt]\n"
    "          1        100: 1 2 \n"
    "                a:[x y z]\n"
    "                m:[7 bytes] n:[5]\n"
    "         -3 1099511627776: 3 \n"
    "Locations\n"
    "     1: 0x1010 M=1 f :0 s=0\n"
    "     2: 0x3010 M=2  :5 s=0\n"
    "     3: 0x7f0000001234 M=3 [F] ns::leaf(int) /src/a b/leaf.h:12 s=10(_ZN2ns4leafEi)\n"
    "             (anonymous namespace)::outer(int, char const*) src/outer.cc:25 "
    "s=20(_ZN12_GLOBAL__N_15outerEiPKc)\n"
    "     4: 0x0 \n"
    "Mappings\n"
    "1: 0x1000/0x2000/0x0   \n"
    "2: 0x3000/0x4000/0x0 /a dir/lib x.so  [FN]\n"
    "3: 0x7f0000000000/0x7f0000100000/0x26000 /usr/lib/libc.so.6 93ac61ec [FN][FL][LN][IN]\n";

TEST(ParseRaw, ReadsEveryField) {
  RawProfile raw;
  std::string error;
  ASSERT_TRUE(parse_raw(kRawText, &raw, &error)) << error;
  EXPECT_THAT(raw.comments, ElementsAre("hello world"));
  EXPECT_TRUE(raw.has_period_type);
  EXPECT_EQ(raw.period_type.type, "space");
  EXPECT_EQ(raw.period_type.unit, "bytes");
  EXPECT_EQ(raw.period, 524288);
  EXPECT_EQ(raw.time_nanos, 1'700'000'000'500'000'000);
  EXPECT_EQ(raw.duration_text, "250m");
  EXPECT_EQ(raw.duration_nanos, 0);  // only read_raw asks -top for it
  ASSERT_EQ(raw.sample_types.size(), 2u);
  EXPECT_EQ(raw.sample_types[1].type, "alloc_space");
  EXPECT_EQ(raw.sample_types[1].unit, "bytes");
  EXPECT_EQ(raw.default_sample_type, "alloc_space");
  EXPECT_EQ(raw.sample_type_index("alloc_space"), 1);
  EXPECT_EQ(raw.sample_type_index("inuse_space"), -1);

  ASSERT_EQ(raw.samples.size(), 2u);
  EXPECT_THAT(raw.samples[0].values, ElementsAre(1, 100));
  EXPECT_THAT(raw.samples[0].location_ids, ElementsAre(1, 2));
  EXPECT_EQ(raw.samples[0].labels.size(), 3u);
  EXPECT_EQ(raw.samples[0].labels["a"], "x y z");
  EXPECT_EQ(raw.samples[0].labels["m"], "7 bytes");
  EXPECT_EQ(raw.samples[0].labels["n"], "5");
  EXPECT_THAT(raw.samples[1].values, ElementsAre(-3, int64_t{1} << 40));
  EXPECT_TRUE(raw.samples[1].labels.empty());

  ASSERT_EQ(raw.locations.size(), 4u);
  const RawLocation* folded = raw.location(3);
  ASSERT_NE(folded, nullptr);
  EXPECT_EQ(folded->address, 0x7f0000001234u);
  EXPECT_EQ(folded->mapping_id, 3u);
  EXPECT_TRUE(folded->folded);
  ASSERT_EQ(folded->lines.size(), 2u);
  EXPECT_EQ(folded->lines[0].function, "ns::leaf(int)");
  EXPECT_EQ(folded->lines[0].system_name, "_ZN2ns4leafEi");
  EXPECT_EQ(folded->lines[0].file, "/src/a b/leaf.h");
  EXPECT_EQ(folded->lines[0].line, 12);
  EXPECT_EQ(folded->lines[0].start_line, 10);
  EXPECT_EQ(folded->lines[1].function, "(anonymous namespace)::outer(int, char const*)");
  EXPECT_EQ(folded->lines[1].file, "src/outer.cc");
  EXPECT_EQ(folded->lines[1].line, 25);
  const RawLocation* nameless = raw.location(2);
  ASSERT_NE(nameless, nullptr);
  ASSERT_EQ(nameless->lines.size(), 1u);
  EXPECT_EQ(nameless->lines[0].function, "");
  EXPECT_EQ(nameless->lines[0].line, 5);
  EXPECT_EQ(raw.location(1)->lines[0].system_name, "f");
  EXPECT_EQ(raw.location(4)->mapping_id, 0u);
  EXPECT_TRUE(raw.location(4)->lines.empty());
  EXPECT_EQ(raw.location(5), nullptr);

  EXPECT_THAT(raw.stack(raw.samples[0]), ElementsAre("f", ""));
  EXPECT_THAT(raw.stack(raw.samples[1]),
              ElementsAre("ns::leaf(int)", "(anonymous namespace)::outer(int, char const*)"));

  ASSERT_EQ(raw.mappings.size(), 3u);
  EXPECT_EQ(raw.mappings[0].filename, "");
  EXPECT_EQ(raw.mappings[0].build_id, "");
  EXPECT_FALSE(raw.mappings[0].has_functions);
  EXPECT_EQ(raw.mappings[1].filename, "/a dir/lib x.so");
  EXPECT_EQ(raw.mappings[1].build_id, "");
  EXPECT_TRUE(raw.mappings[1].has_functions);
  EXPECT_FALSE(raw.mappings[1].has_filenames);
  const RawMapping* libc = raw.mapping(3);
  ASSERT_NE(libc, nullptr);
  EXPECT_EQ(libc->start, 0x7f0000000000u);
  EXPECT_EQ(libc->limit, 0x7f0000100000u);
  EXPECT_EQ(libc->offset, 0x26000u);
  EXPECT_EQ(libc->filename, "/usr/lib/libc.so.6");
  EXPECT_EQ(libc->build_id, "93ac61ec");
  EXPECT_TRUE(libc->has_functions && libc->has_filenames && libc->has_line_numbers &&
              libc->has_inline_frames);
}

TEST(ParseRaw, RejectsTextItDoesNotKnow) {
  RawProfile raw;
  std::string error;
  EXPECT_FALSE(parse_raw("Period: 1\nWhat: is this\nSamples:\n", &raw, &error));
  EXPECT_THAT(error, HasSubstr("line 2"));
  EXPECT_FALSE(parse_raw("Period: 1\nSamples:\nx/y\n 1: 1\nLocations\n", &raw, &error));
  EXPECT_THAT(error, HasSubstr("Mappings"));
  EXPECT_FALSE(parse_raw("", &raw, &error));
}

TEST(PprofTool, ReportsWhyPprofRejectedAProfile) {
  const PprofResult r = run_pprof_on_bytes("this is not a profile", {"-raw"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(r.err.empty());
  RawProfile raw;
  const ::testing::AssertionResult read = read_raw("this is not a profile", &raw);
  EXPECT_FALSE(read);
  EXPECT_THAT(read.message(), HasSubstr("stderr"));
}

profile::Profile profile_lasting(int64_t duration_nanos) {
  profile::Profile p;
  p.sample_types = {{"samples", "count"}};
  p.period_type = {"cpu", "nanoseconds"};
  p.period = 1;
  p.duration_nanos = duration_nanos;
  return p;
}

TEST(PprofTool, TakesTheDurationWithItsUnitFromTop) {
  RawProfile raw;
  ASSERT_TRUE(read_raw(profile::encode_pprof_gz(profile_lasting(250'000'000)), &raw));
  EXPECT_EQ(raw.duration_text, "250m");
  EXPECT_EQ(raw.duration_nanos, 250'000'000);
  // -raw prints "10.0" here, unit lost; -top says "10s".
  ASSERT_TRUE(read_raw(profile::encode_pprof_gz(profile_lasting(10'002'300'000)), &raw));
  EXPECT_NEAR(static_cast<double>(raw.duration_nanos), 10'002'300'000.0, 0.01e9);
  ASSERT_TRUE(read_raw(profile::encode_pprof_gz(profile_lasting(1'234'567)), &raw));
  EXPECT_EQ(raw.duration_nanos, 1'230'000);
}

TEST(PprofTool, ReadsAProfileFile) {
  char dir[] = "/tmp/cpprof-pprof-tool-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/cpu.pb.gz";
  std::ofstream(path, std::ios::binary) << profile::encode_pprof_gz(profile_lasting(1'000'000'000));
  RawProfile raw;
  EXPECT_TRUE(read_raw_file(path, &raw));
  EXPECT_EQ(raw.duration_nanos, 1'000'000'000);
  EXPECT_FALSE(read_raw_file(std::string(dir) + "/missing.pb.gz", &raw));
  unlink(path.c_str());
  rmdir(dir);
}

TEST(PprofTool, KillsAPprofThatHangs) {
  // A server that accepts connections (the kernel does) but never answers.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string url =
      "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/debug/pprof/heap";

  const auto start = std::chrono::steady_clock::now();
  const PprofResult r = run_pprof(url, {"-raw"}, /*timeout_seconds=*/2);
  const auto took = std::chrono::steady_clock::now() - start;
  close(fd);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_THAT(r.err, HasSubstr("killed after 2 s"));
  EXPECT_LT(took, std::chrono::seconds(10));
}

}  // namespace
}  // namespace cpprof::test

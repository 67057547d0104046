// encode_pprof and gzip, checked by decoding with `go tool pprof`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "profile/pprof_encoder.h"
#include "profile/profile.h"
#include "support/pprof_tool.h"

namespace cpprof::profile {
namespace {

using ::testing::ElementsAre;

// A CPU-like profile touching every field the encoder writes.
Profile sample_profile() {
  Profile p;
  p.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  p.period_type = {"cpu", "nanoseconds"};
  p.period = 10'000'000;
  p.time_nanos = 1'700'000'000'123'456'789;
  p.duration_nanos = 1'500'000'000;
  p.default_sample_type = "cpu";
  p.comments = {"first comment", "cpu"};  // "cpu" again: must share its string
  p.mappings = {
      {.id = 1,
       .memory_start = 0x400000,
       .memory_limit = 0x500000,
       .file_offset = 0x1000,
       .filename = "/usr/bin/server",
       .build_id = "0123456789abcdef0123456789abcdef01234567",
       .has_functions = true,
       .has_filenames = true,
       .has_line_numbers = true,
       .has_inline_frames = true},
      {.id = 2,
       .memory_start = 0x7f0000000000,
       .memory_limit = 0x7f0000100000,
       .filename = "/lib/x86_64-linux-gnu/libc.so.6",
       .build_id = "feedface"},
  };
  p.functions = {
      {1, "ns::inlined_leaf(int)", "_ZN2ns12inlined_leafEi", "/src/leaf.h", 10},
      {2, "(anonymous namespace)::outer(int, char const*)", "_ZN12_GLOBAL__N_15outerEiPKc",
       "/src/outer file.cc", 20},
      {3, "main", "main", "/src/main.cc", 0},
      {4, "(lost samples)", "(lost samples)", "", 0},
  };
  p.locations = {
      {.id = 1, .mapping_id = 1, .address = 0x401234, .lines = {{1, 12}, {2, 25}}},
      {.id = 2, .mapping_id = 1, .address = 0x405678, .lines = {{3, 42}}},
      {.id = 3, .mapping_id = 2, .address = 0x7f0000000abc, .lines = {}},  // not symbolized
      {.id = 4, .mapping_id = 0, .address = 0, .lines = {{4, 0}}},         // synthetic
  };
  p.samples = {
      {.location_ids = {1, 2}, .values = {3, 30'000'000}, .labels = {}},
      {.location_ids = {3, 2},
       .values = {1, 10'000'000},
       .labels = {{.key = "thread", .str = "worker-1", .num = 0, .num_unit = ""},
                  {.key = "bytes", .str = "", .num = 4096, .num_unit = "bytes"}}},
      // Beyond 32 bits and negative (diff profiles): multi-byte and ten-byte varints.
      {.location_ids = {4}, .values = {-2, int64_t{1} << 40}, .labels = {}},
  };
  return p;
}

// The string table as written: field 6 of the top-level message. The only
// property pprof cannot check for us (it accepts duplicates).
std::vector<std::string> string_table(const std::string& bytes) {
  std::vector<std::string> strings;
  size_t i = 0;
  auto varint = [&] {
    uint64_t v = 0;
    for (int shift = 0; i < bytes.size(); shift += 7) {
      const auto b = static_cast<uint8_t>(bytes[i++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if (b < 0x80) break;
    }
    return v;
  };
  while (i < bytes.size()) {
    const uint64_t tag = varint();
    if ((tag & 7) == 0) {
      varint();
    } else if ((tag & 7) == 2) {
      const uint64_t len = varint();
      if (tag >> 3 == 6) strings.push_back(bytes.substr(i, len));
      i += len;
    } else {
      ADD_FAILURE() << "unexpected wire type " << (tag & 7);
      break;
    }
  }
  return strings;
}

std::string gunzip(const std::string& gz) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);  // accept only a gzip wrapper
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  }
  EXPECT_EQ(rc, Z_STREAM_END);
  inflateEnd(&zs);
  return out;
}

TEST(PprofEncoder, StringTableStartsEmptyAndHoldsEachStringOnce) {
  const std::vector<std::string> strings = string_table(encode_pprof(sample_profile()));
  ASSERT_FALSE(strings.empty());
  EXPECT_EQ(strings[0], "");
  for (size_t i = 0; i < strings.size(); ++i) {
    for (size_t j = i + 1; j < strings.size(); ++j) {
      EXPECT_NE(strings[i], strings[j]) << "string " << i << " written twice";
    }
  }
  // "cpu" is a sample type, the period type, a comment and the default type.
  EXPECT_EQ(std::count(strings.begin(), strings.end(), "cpu"), 1);
  EXPECT_THAT(strings, ::testing::Contains("worker-1"));
}

TEST(PprofEncoder, PprofReadsHeaderFields) {
  test::RawProfile raw;
  ASSERT_TRUE(test::read_raw(encode_pprof_gz(sample_profile()), &raw));
  ASSERT_EQ(raw.sample_types.size(), 2u);
  EXPECT_EQ(raw.sample_types[0].type, "samples");
  EXPECT_EQ(raw.sample_types[0].unit, "count");
  EXPECT_EQ(raw.sample_types[1].type, "cpu");
  EXPECT_EQ(raw.sample_types[1].unit, "nanoseconds");
  EXPECT_EQ(raw.default_sample_type, "cpu");
  EXPECT_TRUE(raw.has_period_type);
  EXPECT_EQ(raw.period_type.type, "cpu");
  EXPECT_EQ(raw.period_type.unit, "nanoseconds");
  EXPECT_EQ(raw.period, 10'000'000);
  EXPECT_EQ(raw.time_nanos, 1'700'000'000'123'456'789);
  EXPECT_EQ(raw.duration_nanos, 1'500'000'000);
  EXPECT_THAT(raw.comments, ElementsAre("first comment", "cpu"));
}

TEST(PprofEncoder, PprofReadsSamplesStacksAndLabels) {
  test::RawProfile raw;
  ASSERT_TRUE(test::read_raw(encode_pprof_gz(sample_profile()), &raw));
  ASSERT_EQ(raw.samples.size(), 3u);
  EXPECT_THAT(raw.samples[0].values, ElementsAre(3, 30'000'000));
  EXPECT_THAT(raw.stack(raw.samples[0]),
              ElementsAre("ns::inlined_leaf(int)", "(anonymous namespace)::outer(int, char const*)",
                          "main"));
  EXPECT_THAT(raw.samples[1].values, ElementsAre(1, 10'000'000));
  EXPECT_THAT(raw.stack(raw.samples[1]), ElementsAre("0x7f0000000abc", "main"));
  EXPECT_EQ(raw.samples[1].labels["thread"], "worker-1");
  EXPECT_EQ(raw.samples[1].labels["bytes"], "4096 bytes");
  EXPECT_THAT(raw.samples[2].values, ElementsAre(-2, int64_t{1} << 40));
  EXPECT_THAT(raw.stack(raw.samples[2]), ElementsAre("(lost samples)"));
}

TEST(PprofEncoder, PprofReadsLocationsLinesAndFunctions) {
  test::RawProfile raw;
  ASSERT_TRUE(test::read_raw(encode_pprof_gz(sample_profile()), &raw));
  const test::RawLocation* inlined = raw.location(1);
  ASSERT_NE(inlined, nullptr);
  EXPECT_EQ(inlined->address, 0x401234u);
  ASSERT_EQ(inlined->lines.size(), 2u);
  EXPECT_EQ(inlined->lines[0].function, "ns::inlined_leaf(int)");
  EXPECT_EQ(inlined->lines[0].system_name, "_ZN2ns12inlined_leafEi");
  EXPECT_EQ(inlined->lines[0].file, "/src/leaf.h");
  EXPECT_EQ(inlined->lines[0].line, 12);
  EXPECT_EQ(inlined->lines[0].start_line, 10);
  EXPECT_EQ(inlined->lines[1].function, "(anonymous namespace)::outer(int, char const*)");
  EXPECT_EQ(inlined->lines[1].system_name, "_ZN12_GLOBAL__N_15outerEiPKc");
  EXPECT_EQ(inlined->lines[1].file, "/src/outer file.cc");
  EXPECT_EQ(inlined->lines[1].line, 25);
  EXPECT_EQ(inlined->lines[1].start_line, 20);

  const test::RawLocation* synthetic = raw.location(4);
  ASSERT_NE(synthetic, nullptr);
  EXPECT_EQ(synthetic->mapping_id, 0u);
  EXPECT_EQ(synthetic->address, 0u);
}

TEST(PprofEncoder, PprofReadsMappingsWithBuildIds) {
  test::RawProfile raw;
  ASSERT_TRUE(test::read_raw(encode_pprof_gz(sample_profile()), &raw));
  ASSERT_EQ(raw.mappings.size(), 2u);
  const test::RawMapping& exe = raw.mappings[0];
  EXPECT_EQ(exe.filename, "/usr/bin/server");
  EXPECT_EQ(exe.build_id, "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(exe.start, 0x400000u);
  EXPECT_EQ(exe.limit, 0x500000u);
  EXPECT_EQ(exe.offset, 0x1000u);
  EXPECT_TRUE(exe.has_functions && exe.has_filenames && exe.has_line_numbers &&
              exe.has_inline_frames);
  const test::RawMapping& libc = raw.mappings[1];
  EXPECT_EQ(libc.filename, "/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(libc.build_id, "feedface");
  EXPECT_FALSE(libc.has_functions || libc.has_filenames || libc.has_line_numbers ||
               libc.has_inline_frames);
  // Locations still point at the right mapping after pprof decodes them.
  EXPECT_EQ(raw.location(1)->mapping_id, exe.id);
  EXPECT_EQ(raw.location(3)->mapping_id, libc.id);
}

TEST(PprofEncoder, PprofReadsUncompressedAndCompressedAlike) {
  const Profile p = sample_profile();
  const test::PprofResult plain = test::run_pprof_on_bytes(encode_pprof(p), {"-raw"});
  const test::PprofResult gz = test::run_pprof_on_bytes(encode_pprof_gz(p), {"-raw"});
  ASSERT_TRUE(plain.ok()) << plain.err;
  ASSERT_TRUE(gz.ok()) << gz.err;
  EXPECT_EQ(plain.out, gz.out);
}

TEST(PprofEncoder, EmptyProfileIsValid) {
  Profile p;
  p.sample_types = {{"goroutine", "count"}};
  p.period_type = {"goroutine", "count"};
  p.period = 1;
  test::RawProfile raw;
  ASSERT_TRUE(test::read_raw(encode_pprof_gz(p), &raw));
  EXPECT_EQ(raw.sample_types.size(), 1u);
  EXPECT_TRUE(raw.samples.empty());
  EXPECT_EQ(raw.time_nanos, 0);
  EXPECT_EQ(raw.duration_nanos, 0);
  EXPECT_THAT(string_table(encode_pprof(p)), ElementsAre("", "goroutine", "count"));
}

TEST(PprofEncoder, TopAgreesWithSampleIndex) {
  // -sample_index picks the value column: checks values land in the right one.
  const test::PprofResult top = test::run_pprof_on_bytes(encode_pprof_gz(sample_profile()),
                                                         {"-top", "-sample_index=samples"});
  ASSERT_TRUE(top.ok()) << top.err;
  EXPECT_THAT(top.out, ::testing::HasSubstr("accounting for 2,"));  // 3 + 1 - 2
  EXPECT_THAT(top.out, ::testing::ContainsRegex("\n +-2 [^\n]*\\(lost samples\\)\n"));
}

TEST(Gzip, RoundTripsThroughInflate) {
  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < 1 << 20; ++i) {
    x = x * 1103515245 + 12345;
    data.push_back(static_cast<char>(i % 7 == 0 ? x >> 24 : 'a' + i % 13));
  }
  const std::string gz = gzip(data);
  ASSERT_GE(gz.size(), 10u);
  EXPECT_EQ(static_cast<uint8_t>(gz[0]), 0x1f);  // gzip magic, not a zlib header
  EXPECT_EQ(static_cast<uint8_t>(gz[1]), 0x8b);
  EXPECT_LT(gz.size(), data.size());
  EXPECT_EQ(gunzip(gz), data);
  EXPECT_EQ(gunzip(gzip("")), "");
}

}  // namespace
}  // namespace cpprof::profile

// The heap profiles built from hand-made HeapSnapshots: Go's unbiasing,
// its sample and period types, the "bytes" label, the seconds=N delta, the
// delta_heap state and the debug=1 text. Every profile is read back with
// `go tool pprof -symbolize=none`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "profile/pprof_encoder.h"
#include "profile/text_columns.h"
#include "sources/heap/heap_delta.h"
#include "sources/heap/heap_profile.h"
#include "sources/heap/heap_text.h"
#include "sources/heap/scrape_delta.h"
#include "support/pprof_tool.h"
#include "symbolize/symbolizer.h"

namespace cpprof::sources {
namespace {

using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Return addresses inside functions of this binary, to stand for the
// stacks the capture side records.
volatile uint64_t g_return_address = 0;
volatile int g_sink = 0;

[[gnu::noinline]] void note_return_address() {
  g_return_address =
      reinterpret_cast<uint64_t>(__builtin_extract_return_addr(__builtin_return_address(0)));
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] uint64_t heap_test_leaf_site() {
  note_return_address();
  g_sink = g_sink + 1;  // distinct bodies: identical ones would be folded into one
  return g_return_address;
}

[[gnu::noinline]] uint64_t heap_test_other_site() {
  note_return_address();
  g_sink = g_sink + 2;  // distinct bodies: identical ones would be folded into one
  return g_return_address;
}

[[gnu::noinline]] uint64_t heap_test_caller() {
  note_return_address();
  g_sink = g_sink + 3;  // distinct bodies: identical ones would be folded into one
  return g_return_address;
}

const uint64_t kLeaf = heap_test_leaf_site();
const uint64_t kOther = heap_test_other_site();
const uint64_t kCaller = heap_test_caller();

HeapBucket bucket(std::vector<uint64_t> frames, uint64_t alloc_objects, uint64_t alloc_bytes,
                  uint64_t free_objects = 0, uint64_t free_bytes = 0) {
  return {std::move(frames), alloc_objects, alloc_bytes, free_objects, free_bytes};
}

HeapSnapshot snapshot(int64_t rate, std::vector<HeapBucket> buckets, int64_t time_nanos = 0) {
  HeapSnapshot s;
  s.rate = rate;
  s.time_nanos = time_nanos != 0 ? time_nanos : 1'700'000'000'000'000'000;
  s.buckets = std::move(buckets);
  return s;
}

// The sample whose leaf function ends with `leaf`; fails the test if none.
const test::RawSample* find_sample(const test::RawProfile& raw, const std::string& leaf) {
  for (const test::RawSample& s : raw.samples) {
    std::vector<std::string> stack = raw.stack(s);
    if (!stack.empty() && stack[0].size() >= leaf.size() &&
        stack[0].compare(stack[0].size() - leaf.size(), leaf.size(), leaf) == 0) {
      return &s;
    }
  }
  ADD_FAILURE() << "no sample with leaf " << leaf;
  return nullptr;
}

class HeapProfileTest : public ::testing::Test {
 protected:
  symbolize::Symbolizer symbolizer_;

  test::RawProfile read(const profile::Profile& p) {
    test::RawProfile raw;
    EXPECT_TRUE(test::read_raw(profile::encode_pprof_gz(p), &raw));
    return raw;
  }
};

TEST(HeapScale, MatchesGoScaleHeapSample) {
  // Hand-computed: count * 1/(1-exp(-avg/rate)), size likewise, truncated.
  EXPECT_EQ(scale_heap_sample(1, 100, 524288), std::make_pair(int64_t{5243}, int64_t{524338}));
  EXPECT_EQ(scale_heap_sample(2, 200, 524288), std::make_pair(int64_t{10486}, int64_t{1048676}));
  EXPECT_EQ(scale_heap_sample(1, 4096, 524288), std::make_pair(int64_t{128}, int64_t{526338}));
  EXPECT_EQ(scale_heap_sample(7, 700, 1000), std::make_pair(int64_t{73}, int64_t{7355}));
  // Objects much larger than the rate are sampled for sure: hardly scaled.
  EXPECT_EQ(scale_heap_sample(3, 3 * 1048576, 524288),
            std::make_pair(int64_t{3}, int64_t{3638089}));
}

TEST(HeapScale, RateOneOrLessAndEmptyCountsAreLeftAlone) {
  EXPECT_EQ(scale_heap_sample(5, 320, 1), std::make_pair(int64_t{5}, int64_t{320}));
  EXPECT_EQ(scale_heap_sample(5, 320, 0), std::make_pair(int64_t{5}, int64_t{320}));
  EXPECT_EQ(scale_heap_sample(0, 320, 512), std::make_pair(int64_t{0}, int64_t{0}));
  EXPECT_EQ(scale_heap_sample(5, 0, 512), std::make_pair(int64_t{0}, int64_t{0}));
}

TEST_F(HeapProfileTest, RateOneGivesExactCountsWithGoTypesAndBytesLabel) {
  HeapSnapshot s = snapshot(
      1, {bucket({kLeaf, kCaller}, 10, 640, 4, 256), bucket({kOther, kCaller}, 3, 3000, 3, 3000)});
  test::RawProfile raw = read(build_heap_profile(s, symbolizer_, HeapProfileKind::kHeap));
  ASSERT_EQ(raw.sample_types.size(), 4u);
  const char* types[][2] = {{"alloc_objects", "count"},
                            {"alloc_space", "bytes"},
                            {"inuse_objects", "count"},
                            {"inuse_space", "bytes"}};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(raw.sample_types[i].type, types[i][0]);
    EXPECT_EQ(raw.sample_types[i].unit, types[i][1]);
  }
  ASSERT_TRUE(raw.has_period_type);
  EXPECT_EQ(raw.period_type.type, "space");
  EXPECT_EQ(raw.period_type.unit, "bytes");
  EXPECT_EQ(raw.period, 1);
  EXPECT_EQ(raw.default_sample_type, "");  // Go leaves heap's unset: pprof shows inuse_space
  EXPECT_EQ(raw.time_nanos, s.time_nanos);
  ASSERT_EQ(raw.samples.size(), 2u);

  const test::RawSample* leaf = find_sample(raw, "heap_test_leaf_site");
  ASSERT_NE(leaf, nullptr);
  EXPECT_THAT(leaf->values, ElementsAre(10, 640, 6, 384));
  EXPECT_EQ(leaf->labels.at("bytes"), "64 bytes");
  EXPECT_THAT(raw.stack(*leaf).at(1), EndsWith("heap_test_caller"));
  const test::RawSample* other = find_sample(raw, "heap_test_other_site");
  ASSERT_NE(other, nullptr);
  EXPECT_THAT(other->values, ElementsAre(3, 3000, 0, 0));
  EXPECT_EQ(other->labels.at("bytes"), "1000 bytes");

  // Frames are looked up at return address - 1, inside the call.
  const test::RawLocation* loc = raw.location(leaf->location_ids.at(0));
  ASSERT_NE(loc, nullptr);
  EXPECT_EQ(loc->address, kLeaf - 1);
}

TEST_F(HeapProfileTest, UnbiasesAllocAndInuseEachFromTheirOwnAverage) {
  // 2 sampled allocations of 100 bytes, one freed; 5 of 64 bytes, none freed.
  HeapSnapshot s = snapshot(
      524288, {bucket({kLeaf, kCaller}, 2, 200, 1, 100), bucket({kOther, kCaller}, 5, 320)});
  test::RawProfile raw = read(build_heap_profile(s, symbolizer_, HeapProfileKind::kHeap));
  EXPECT_EQ(raw.period, 524288);
  const test::RawSample* leaf = find_sample(raw, "heap_test_leaf_site");
  ASSERT_NE(leaf, nullptr);
  EXPECT_THAT(leaf->values, ElementsAre(10486, 1048676, 5243, 524338));
  EXPECT_EQ(leaf->labels.at("bytes"), "100 bytes");
  const test::RawSample* other = find_sample(raw, "heap_test_other_site");
  ASSERT_NE(other, nullptr);
  EXPECT_THAT(other->values, ElementsAre(40962, 2621600, 40962, 2621600));
}

TEST_F(HeapProfileTest, AllocsDefaultsToAllocSpace) {
  HeapSnapshot s = snapshot(512, {bucket({kLeaf}, 1, 64)});
  test::RawProfile raw = read(build_heap_profile(s, symbolizer_, HeapProfileKind::kAllocs));
  EXPECT_EQ(raw.default_sample_type, "alloc_space");
  test::PprofResult top = test::run_pprof_on_bytes(
      profile::encode_pprof_gz(build_heap_profile(s, symbolizer_, HeapProfileKind::kAllocs)),
      {"-top"});
  ASSERT_TRUE(top.ok()) << top.err;
  EXPECT_THAT(top.out, HasSubstr("Type: alloc_space"));
  test::PprofResult heap = test::run_pprof_on_bytes(
      profile::encode_pprof_gz(build_heap_profile(s, symbolizer_, HeapProfileKind::kHeap)),
      {"-top"});
  ASSERT_TRUE(heap.ok()) << heap.err;
  EXPECT_THAT(heap.out, HasSubstr("Type: inuse_space"));
}

TEST_F(HeapProfileTest, BucketWithoutStackGetsSyntheticFrame) {
  HeapSnapshot s = snapshot(1, {bucket({}, 4, 128, 1, 32), bucket({kLeaf}, 1, 8)});
  test::RawProfile raw = read(build_heap_profile(s, symbolizer_, HeapProfileKind::kHeap));
  ASSERT_EQ(raw.samples.size(), 2u);
  const test::RawSample* unknown = find_sample(raw, kUnknownStackFrame);
  ASSERT_NE(unknown, nullptr);
  EXPECT_EQ(raw.stack(*unknown), std::vector<std::string>{kUnknownStackFrame});
  EXPECT_THAT(unknown->values, ElementsAre(4, 128, 3, 96));
  EXPECT_EQ(unknown->labels.at("bytes"), "32 bytes");
}

TEST_F(HeapProfileTest, ZeroSizedAllocationsCarryNoLabel) {
  HeapSnapshot s = snapshot(512, {bucket({kLeaf}, 3, 0)});
  profile::Profile p = build_heap_profile(s, symbolizer_, HeapProfileKind::kHeap);
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_THAT(p.samples[0].values, ElementsAre(0, 0, 0, 0));  // as Go scales them
  EXPECT_TRUE(p.samples[0].labels.empty());
  test::RawProfile raw = read(p);  // pprof drops all-zero samples when reading
  EXPECT_TRUE(raw.samples.empty());
}

// seconds=N: Go subtracts all four values and drops what comes to zero.
TEST_F(HeapProfileTest, DeltaSubtractsAllFourValuesLikeGo) {
  const int64_t t0 = 1'700'000'000'000'000'000;
  const int64_t t1 = t0 + 2'000'000'000;
  profile::Profile earlier = build_heap_profile(
      snapshot(1,
               {bucket({kLeaf, kCaller}, 10, 640, 2, 128), bucket({kOther, kCaller}, 5, 500),
                bucket({kCaller}, 4, 400, 0, 0)},
               t0),
      symbolizer_, HeapProfileKind::kAllocs);
  profile::Profile later = build_heap_profile(
      snapshot(1,
               {bucket({kLeaf, kCaller}, 15, 960, 12, 768),  // grew, and most got freed
                bucket({kOther, kCaller}, 5, 500),           // unchanged: dropped
                bucket({kCaller}, 4, 400, 4, 400),           // freed in the window
                bucket({kOther}, 2, 20)},                    // new
               t1),
      symbolizer_, HeapProfileKind::kAllocs);
  test::RawProfile raw = read(delta_heap(earlier, later));
  EXPECT_EQ(raw.default_sample_type, "alloc_space");
  EXPECT_EQ(raw.time_nanos, t1);
  EXPECT_EQ(raw.duration_nanos, 2'000'000'000);
  ASSERT_EQ(raw.samples.size(), 3u);
  const test::RawSample* leaf = find_sample(raw, "heap_test_leaf_site");
  ASSERT_NE(leaf, nullptr);
  EXPECT_THAT(leaf->values, ElementsAre(5, 320, -5, -320));  // in use went from 8 to 3
  const test::RawSample* caller = find_sample(raw, "heap_test_caller");
  ASSERT_NE(caller, nullptr);
  EXPECT_THAT(caller->values, ElementsAre(0, 0, -4, -400));
  const test::RawSample* other = find_sample(raw, "heap_test_other_site");
  ASSERT_NE(other, nullptr);
  EXPECT_THAT(other->values, ElementsAre(2, 20, 2, 20));
  EXPECT_EQ(raw.stack(*other).size(), 1u);
}

TEST_F(HeapProfileTest, DeltaKeepsStacksOnlyInTheEarlierProfileNegated) {
  profile::Profile earlier =
      build_heap_profile(snapshot(1, {bucket({kLeaf, kCaller}, 2, 20), bucket({kOther}, 1, 10)}),
                         symbolizer_, HeapProfileKind::kHeap);
  profile::Profile later = build_heap_profile(snapshot(1, {bucket({kLeaf, kCaller}, 2, 20)}),
                                              symbolizer_, HeapProfileKind::kHeap);
  test::RawProfile raw = read(delta_heap(earlier, later));
  ASSERT_EQ(raw.samples.size(), 1u);
  EXPECT_THAT(raw.stack(raw.samples[0]).at(0), EndsWith("heap_test_other_site"));
  EXPECT_THAT(raw.samples[0].values, ElementsAre(-1, -10, -1, -10));
}

TEST_F(HeapProfileTest, DeltaMatchesAStackWhoseAverageSizeMoved) {
  profile::Profile earlier = build_heap_profile(snapshot(1, {bucket({kLeaf}, 2, 200)}), symbolizer_,
                                                HeapProfileKind::kHeap);
  profile::Profile later = build_heap_profile(snapshot(1, {bucket({kLeaf}, 3, 600)}), symbolizer_,
                                              HeapProfileKind::kHeap);
  test::RawProfile raw = read(delta_heap(earlier, later));
  ASSERT_EQ(raw.samples.size(), 1u);
  EXPECT_THAT(raw.samples[0].values, ElementsAre(1, 400, 1, 400));
  EXPECT_EQ(raw.samples[0].labels.at("bytes"), "200 bytes");  // the later average
}

TEST_F(HeapProfileTest, DeltaOfEqualProfilesIsEmpty) {
  profile::Profile p = build_heap_profile(snapshot(512, {bucket({kLeaf, kCaller}, 2, 200)}),
                                          symbolizer_, HeapProfileKind::kHeap);
  profile::Profile d = delta_heap(p, p);
  EXPECT_TRUE(d.samples.empty());
  EXPECT_TRUE(d.locations.empty());
  test::PprofResult top = test::run_pprof_on_bytes(profile::encode_pprof_gz(d), {"-top"});
  EXPECT_TRUE(top.ok()) << top.err;
}

// delta_heap: alloc_* since the previous answer, inuse_* absolute.
TEST_F(HeapProfileTest, ScrapeDeltaCountsAllocationsSinceThePreviousAnswer) {
  ScrapeDelta state;
  std::vector<HeapSnapshot> snapshots = {
      snapshot(1, {bucket({kLeaf}, 4, 400, 1, 100), bucket({kOther}, 2, 20, 2, 20)}, 1000),
      snapshot(1,
               {bucket({kLeaf}, 6, 600, 1, 100),  // 2 more, 5 live
                bucket({kOther}, 2, 20, 2, 20),   // nothing new, nothing live: left out
                bucket({kCaller}, 1, 8)},         // new
               4000),
      snapshot(1,
               {bucket({kLeaf}, 6, 600, 6, 600), bucket({kOther}, 2, 20, 2, 20),
                bucket({kCaller}, 1, 8)},
               9000),
  };
  size_t next = 0;
  auto take = [&] { return snapshots.at(next++); };
  profile::Profile p;
  std::string why;

  ASSERT_TRUE(state.next(take, symbolizer_, &p, &why));
  test::RawProfile first = read(p);
  EXPECT_EQ(first.default_sample_type, "");
  ASSERT_EQ(first.samples.size(), 2u);  // everything since start-up
  EXPECT_THAT(find_sample(first, "heap_test_leaf_site")->values, ElementsAre(4, 400, 3, 300));
  EXPECT_THAT(find_sample(first, "heap_test_other_site")->values, ElementsAre(2, 20, 0, 0));

  ASSERT_TRUE(state.next(take, symbolizer_, &p, &why));
  EXPECT_EQ(p.duration_nanos, 3000);
  test::RawProfile second = read(p);
  ASSERT_EQ(second.samples.size(), 2u);
  EXPECT_THAT(find_sample(second, "heap_test_leaf_site")->values, ElementsAre(2, 200, 5, 500));
  EXPECT_THAT(find_sample(second, "heap_test_caller")->values, ElementsAre(1, 8, 1, 8));

  ASSERT_TRUE(state.next(take, symbolizer_, &p, &why));
  test::RawProfile third = read(p);
  ASSERT_EQ(third.samples.size(), 1u);  // kLeaf all freed, nothing new anywhere but kCaller live
  EXPECT_THAT(find_sample(third, "heap_test_caller")->values, ElementsAre(0, 0, 1, 8));
  EXPECT_EQ(find_sample(third, "heap_test_caller")->labels.at("bytes"), "8 bytes");
}

TEST_F(HeapProfileTest, ScrapeDeltaUnbiasesTheNewAllocationsOnly) {
  ScrapeDelta state;
  std::vector<HeapSnapshot> snapshots = {snapshot(524288, {bucket({kLeaf}, 1, 100)}),
                                         snapshot(524288, {bucket({kLeaf}, 3, 300, 1, 100)})};
  size_t next = 0;
  auto take = [&] { return snapshots.at(next++); };
  profile::Profile p;
  std::string why;
  ASSERT_TRUE(state.next(take, symbolizer_, &p, &why));
  ASSERT_TRUE(state.next(take, symbolizer_, &p, &why));
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_THAT(p.samples[0].values, ElementsAre(10486, 1048676, 10486, 1048676));
}

TEST_F(HeapProfileTest, ScrapeDeltaRefusesWhileOffAndKeepsItsState) {
  ScrapeDelta state;
  HeapSnapshot off;
  off.unavailable = "heap profiling is off (CPPROF_HEAP_RATE=0)";
  std::vector<HeapSnapshot> snapshots = {snapshot(1, {bucket({kLeaf}, 1, 10)}), off,
                                         snapshot(1, {bucket({kLeaf}, 3, 30)})};
  size_t next = 0;
  auto take = [&] { return snapshots.at(next++); };
  profile::Profile p;
  std::string why;
  ASSERT_TRUE(state.next(take, symbolizer_, &p, &why));
  EXPECT_FALSE(state.next(take, symbolizer_, &p, &why));
  EXPECT_EQ(why, off.unavailable);
  ASSERT_TRUE(state.next(take, symbolizer_, &p, &why));
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_THAT(p.samples[0].values, ElementsAre(2, 20, 3, 30));
}

TEST(HeapTextColumns, AlignsCellsAsGoTabwriter) {
  // Go's text/tabwriter.NewWriter(w, 1, 8, 1, '\t', 0) output for this
  // input, taken from go1.19.
  const std::string in =
      "heap profile: 1: 2 [3: 4] @ heap/1048576\n"
      "1: 2 [3: 4] @ 0x401001 0x402002\n"
      "#\t0x401000\tf+0x10\t/a/b.cc:12\n"
      "#\t0x7f0000402001\ta_much_longer_function_name+0x1234\t/a/c.cc:3\n"
      "#\t0x7f0000402001\n"
      "\n"
      "1: 2 [3: 4] @ 0x401001\n"
      "#\t0x401000\tf+0x10\t/a/b.cc:12\n"
      "\n"
      "\n# runtime.MemStats\n# Alloc = 5\n";
  const std::string go =
      "heap profile: 1: 2 [3: 4] @ heap/1048576\n"
      "1: 2 [3: 4] @ 0x401001 0x402002\n"
      "#\t0x401000\tf+0x10\t\t\t\t\t/a/b.cc:12\n"
      "#\t0x7f0000402001\ta_much_longer_function_name+0x1234\t/a/c.cc:3\n"
      "#\t0x7f0000402001\n"
      "\n"
      "1: 2 [3: 4] @ 0x401001\n"
      "#\t0x401000\tf+0x10\t/a/b.cc:12\n"
      "\n"
      "\n# runtime.MemStats\n# Alloc = 5\n";
  EXPECT_EQ(profile::align_tab_columns(in), go);
  EXPECT_EQ(profile::align_tab_columns(""), "");
  EXPECT_EQ(profile::align_tab_columns("no tabs\n"), "no tabs\n");
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

TEST_F(HeapProfileTest, TextIsGoDebugOneFormWithRawCounts) {
  HeapSnapshot s =
      snapshot(524288, {bucket({kOther, kCaller}, 2, 200, 2, 200),  // none in use
                        bucket({kLeaf, kCaller}, 5, 320, 1, 64), bucket({0x10}, 1, 8)});
  const std::string text = heap_text(s, symbolizer_, {{"Mallocs", 12}, {"MaxRSS", 4096}});
  std::vector<std::string> lines = lines_of(text);
  ASSERT_GE(lines.size(), 12u) << text;
  // Totals of the raw counts, and twice the rate, as Go prints them.
  EXPECT_EQ(lines[0], "heap profile: 5: 264 [8: 528] @ heap/1048576");
  // Sorted by in-use bytes, largest first; return addresses after "@".
  EXPECT_EQ(lines[1], "4: 256 [5: 320] @ " + hex(kLeaf) + " " + hex(kCaller));
  EXPECT_THAT(lines[2], StartsWith("#\t" + hex(kLeaf - 1) + "\t"));
  EXPECT_THAT(lines[2], HasSubstr("heap_test_leaf_site+0x"));
  EXPECT_THAT(lines[2], HasSubstr("sources_heap_profile_test.cc:"));
  EXPECT_THAT(lines[3], StartsWith("#\t" + hex(kCaller - 1) + "\t"));
  EXPECT_THAT(lines[3], HasSubstr("heap_test_caller+0x"));
  EXPECT_EQ(lines[4], "");
  EXPECT_EQ(lines[5], "1: 8 [1: 8] @ 0x10");
  EXPECT_EQ(lines[6], "#\t0xf");  // unknown: the address only
  EXPECT_EQ(lines[7], "");
  EXPECT_EQ(lines[8], "0: 0 [2: 200] @ " + hex(kOther) + " " + hex(kCaller));
  EXPECT_THAT(text, HasSubstr("\n\n# cpprof.AllocStats\n# Mallocs = 12\n# MaxRSS = 4096\n"));
  EXPECT_EQ(text.back(), '\n');

  // The offset is counted from the function's start.
  const uint64_t start = symbolizer_.function_start(kLeaf - 1);
  ASSERT_NE(start, 0u);
  EXPECT_THAT(lines[2], HasSubstr("heap_test_leaf_site+" + hex(kLeaf - 1 - start) + "\t"));
}

TEST_F(HeapProfileTest, PprofReadsTheTextToTheProfilesValues) {
  HeapSnapshot s = snapshot(4096, {bucket({kLeaf, kCaller}, 5, 320, 1, 64),
                                   bucket({kOther, kCaller}, 3, 30000, 1, 10000)});
  // pprof's legacy parser unbiases the text's raw counts from its header:
  // it must arrive at what the protobuf form says.
  test::PprofResult from_text = test::run_pprof_on_bytes(heap_text(s, symbolizer_, {}), {"-raw"});
  ASSERT_TRUE(from_text.ok()) << from_text.err;
  test::RawProfile text_raw;
  std::string error;
  ASSERT_TRUE(test::parse_raw(from_text.out, &text_raw, &error)) << error << from_text.out;
  test::RawProfile proto_raw = read(build_heap_profile(s, symbolizer_, HeapProfileKind::kHeap));
  auto values = [](const test::RawProfile& raw) {
    std::vector<std::vector<int64_t>> v;
    for (const test::RawSample& sample : raw.samples) v.push_back(sample.values);
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(values(text_raw), values(proto_raw)) << from_text.out;
  EXPECT_EQ(text_raw.period, 4096);
}

}  // namespace
}  // namespace cpprof::sources

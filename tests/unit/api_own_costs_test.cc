// cpprof's own costs on the index page: the memory its structures hold
// (a total that is the sum of its parts, each part moving when its
// structure does) and the heap samples it could not keep whole.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include "api/own_costs.h"
#include "capture/heap_buckets.h"
#include "capture/heap_sampler.h"
#include "cpprof/alloc_stats.h"
#include "cpprof/heap_profile.h"
#include "cpprof/server.h"
#include "support/http_client.h"

namespace cpprof {
namespace {

#ifdef CPPROF_SANITIZE
#define SKIP_IF_NOTHING_IS_SAMPLED() \
  GTEST_SKIP() << "the sanitizer build does not interpose malloc, so nothing is sampled"
#else
#define SKIP_IF_NOTHING_IS_SAMPLED() (void)0
#endif

// A size as the page prints it, and how far the printed value may be from
// the real one (half a unit of its last digit).
struct Printed {
  double bytes = 0;
  double slack = 0;
};

Printed parse_size(const std::string& text) {
  std::smatch m;
  if (!std::regex_match(text, m, std::regex(R"(([0-9]+(?:\.[0-9])?) (B|KiB|MiB))"))) {
    ADD_FAILURE() << "not a size: " << text;
    return {};
  }
  const double unit = m[2] == "B" ? 1 : m[2] == "KiB" ? 1024 : 1024 * 1024;
  const double last_digit = m[2] == "MiB" ? 0.1 : 1;
  return {std::stod(m[1]) * unit, m[2] == "B" ? 0 : last_digit * unit / 2};
}

// The "cpprof's memory" row: the total and its parts, in page order.
struct MemoryRow {
  Printed total;
  std::vector<Printed> parts;  // sample buffer, heap stacks, sampled objects, threads, counters
};

bool parse_memory_row(const std::string& page, MemoryRow* row) {
  static const std::regex kRow(
      "<td>cpprof&#39;s memory:</td><td>([^ ]+ [KMi]*B) \\(sample buffer ([^,]+), heap stacks "
      "([^,]+), sampled objects&#39; headers and free slots ([^,]+), thread records ([^,]+), "
      "allocation counters ([^;]+); its heap allocations not included\\)</td>");
  std::smatch m;
  if (!std::regex_search(page, m, kRow)) return false;
  row->total = parse_size(m[1]);
  for (size_t i = 2; i < m.size(); ++i) row->parts.push_back(parse_size(m[i]));
  return true;
}

// One allocation of `size` bytes, freed (a pair the compiler cannot drop).
void allocate_and_free(size_t size) {
  void* volatile object = std::malloc(size);
  std::free(object);
}

void expect_parts_add_up(const MemoryRow& row) {
  double sum = 0;
  double slack = row.total.slack;
  for (const Printed& part : row.parts) {
    sum += part.bytes;
    slack += part.slack;
  }
  EXPECT_GT(row.total.bytes, 0);
  EXPECT_LE(std::abs(row.total.bytes - sum), slack)
      << "total " << row.total.bytes << " B, parts " << sum << " B";
}

std::string index_page(const Server& server) {
  test::HttpResponse response = test::http_get(server.port(), "/debug/pprof/");
  EXPECT_EQ(response.status, 200) << response.error;
  return response.body;
}

TEST(OwnCosts, MemoryRowIsTheSumOfItsPartsAndCountsTheSampleBufferOnceItExists) {
  Server server({.address = "127.0.0.1:0", .log = "off"});
  ASSERT_TRUE(server.ok()) << server.error();
  MemoryRow before;
  std::string page = index_page(server);
  ASSERT_TRUE(parse_memory_row(page, &before)) << page;
  ASSERT_EQ(before.parts.size(), 5u);
  expect_parts_add_up(before);
  EXPECT_EQ(before.parts[0].bytes, 0) << "no CPU profile yet, no sample buffer";
  EXPECT_GT(before.parts[3].bytes, 0) << "this thread and the server's are in the thread table";
  EXPECT_GT(before.parts[4].bytes, 0) << "this thread counts its allocations";

  test::HttpResponse profile = test::http_get(server.port(), "/debug/pprof/profile?seconds=1");
  ASSERT_EQ(profile.status, 200) << profile.error;
  MemoryRow after;
  page = index_page(server);
  ASSERT_TRUE(parse_memory_row(page, &after)) << page;
  expect_parts_add_up(after);
  EXPECT_GT(after.parts[0].bytes, 0) << page;
  EXPECT_GE(after.total.bytes + after.total.slack,
            before.total.bytes - before.total.slack + after.parts[0].bytes - after.parts[0].slack);
}

TEST(OwnCosts, HeapSamplesDroppedRowIsShownNextToTheCpuOne) {
  Server server({.address = "127.0.0.1:0", .log = "off"});
  ASSERT_TRUE(server.ok()) << server.error();
  const std::string page = index_page(server);
  const size_t cpu = page.find("<td>CPU samples dropped:</td><td>0</td>");
  const size_t heap = page.find(
      "<td>heap samples dropped:</td><td>0 (and 0 kept without their stack: stack table "
      "full)</td>");
  ASSERT_NE(cpu, std::string::npos) << page;
  ASSERT_NE(heap, std::string::npos) << page;
  EXPECT_LT(cpu, heap);
}

// Sampled objects: what they asked for is the program's memory; the rest
// of their slots is cpprof's, and so are freed slots kept for reuse.
TEST(OwnCosts, SampledObjectsCountOnlyWhatIsNotTheProgramsMemory) {
  SKIP_IF_NOTHING_IS_SAMPLED();
  constexpr int kObjects = 64;
  constexpr size_t kSize = 10000;      // a page run: 16-byte header + 10000 B = 3 pages
  constexpr uint64_t kRun = 3 * 4096;  // the run, kept resident when freed (< 64 KiB)
  constexpr uint64_t kOverhead = kRun - kSize;
  std::vector<void*> objects(kObjects);
  const int64_t rate = heap_profile_rate();
  set_heap_profile_rate(1);  // every allocation sampled
  const uint64_t start = api::own_memory(0).sampled_objects;
  const uint64_t taken_before = capture::heap_samples_taken();
  for (void*& object : objects) object = std::malloc(kSize);
  const uint64_t taken = capture::heap_samples_taken() - taken_before;
  const uint64_t live = api::own_memory(0).sampled_objects;
  for (void* object : objects) std::free(object);
  const uint64_t freed = api::own_memory(0).sampled_objects;
  set_heap_profile_rate(rate);
  ASSERT_EQ(taken, static_cast<uint64_t>(kObjects));
  EXPECT_EQ(live - start, kObjects * kOverhead);
  EXPECT_EQ(freed - start, kObjects * kRun);
}

// The stack table is mapped whole (3.5 MiB) but only the pages written
// hold memory; reading it all for a profile writes none.
TEST(OwnCosts, HeapStacksCountTheTablePagesWrittenNotTheWholeTable) {
  SKIP_IF_NOTHING_IS_SAMPLED();
  constexpr uint64_t kPage = 4096;
  constexpr uint64_t kTable = 896 * kPage;  // 65536 buckets of 56 bytes
  const int64_t rate = heap_profile_rate();
  set_heap_profile_rate(1);
  const uint64_t start = api::own_memory(0).heap_stacks;
  allocate_and_free(99991);  // a size never seen: a new bucket
  const uint64_t one = api::own_memory(0).heap_stacks;
  for (size_t size = 100000; size < 103000; ++size) allocate_and_free(size);
  const uint64_t many = api::own_memory(0).heap_stacks;
  set_heap_profile_rate(rate);
  capture::for_each_heap_bucket(
      [](const uint64_t*, size_t, const capture::HeapBucketCounts&, void*) {}, nullptr);
  const uint64_t after_reading = api::own_memory(0).heap_stacks;
  EXPECT_LT(start, kTable / 4);
  EXPECT_LE(one - start, 3 * kPage) << "a bucket spans at most two pages, its frames one more";
  EXPECT_GT(many - one, kTable / 2) << "3000 buckets land on most of the table's 896 pages";
  EXPECT_LT(many, kTable + kTable / 2);
  EXPECT_EQ(after_reading, many);
}

TEST(OwnCosts, SizesArePrintedInBytesKibibytesOrMebibytes) {
  EXPECT_EQ(api::format_bytes(0), "0 B");
  EXPECT_EQ(api::format_bytes(1023), "1023 B");
  EXPECT_EQ(api::format_bytes(1024), "1 KiB");
  EXPECT_EQ(api::format_bytes(640 * 1024 + 511), "640 KiB");
  EXPECT_EQ(api::format_bytes(1024 * 1024), "1.0 MiB");
  EXPECT_EQ(api::format_bytes(1258291), "1.2 MiB");
}

}  // namespace
}  // namespace cpprof

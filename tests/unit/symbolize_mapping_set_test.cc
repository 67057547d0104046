#include "symbolize/mapping_set.h"

#include <gtest/gtest.h>

#include <string>

namespace cpprof::symbolize {
namespace {

MapsEntry entry(uint64_t start, uint64_t limit, std::string path, uint64_t inode = 1) {
  MapsEntry e;
  e.start = start;
  e.limit = limit;
  e.perms = "r-xp";
  e.inode = inode;
  e.path = std::move(path);
  return e;
}

std::string path_at(const MappingSet& set, uint64_t address) {
  size_t i = set.find(address);
  return i == SIZE_MAX ? "<none>" : set.all()[i].entry.path;
}

TEST(MappingSet, FindsTheMappingHoldingAnAddressAndNothingOutside) {
  MappingSet set;
  set.add(entry(0x3000, 0x4000, "/c"));
  set.add(entry(0x1000, 0x2000, "/a"));
  EXPECT_EQ(path_at(set, 0x1000), "/a");
  EXPECT_EQ(path_at(set, 0x1fff), "/a");
  EXPECT_EQ(path_at(set, 0x2000), "<none>");
  EXPECT_EQ(path_at(set, 0x0fff), "<none>");
  EXPECT_EQ(path_at(set, 0x3800), "/c");
  EXPECT_EQ(path_at(set, 0x4000), "<none>");
  ASSERT_EQ(set.all().size(), 2u);
  EXPECT_EQ(set.all()[0].entry.path, "/a");  // ordered by start
}

TEST(MappingSet, AddingTheSameMappingAgainIsANoOp) {
  MappingSet set;
  size_t first = set.add(entry(0x1000, 0x2000, "/a"));
  size_t again = set.add(entry(0x1000, 0x2000, "/a"));
  EXPECT_EQ(first, again);
  EXPECT_EQ(set.all().size(), 1u);
  // Same range, different file (reloaded after an upgrade): a new mapping.
  set.add(entry(0x1000, 0x2000, "/a", 2));
  EXPECT_EQ(set.all().size(), 2u);
}

TEST(MappingSet, NewestWinsWhereMappingsOverlapAndPastOnesRemain) {
  MappingSet set;
  set.add(entry(0x1000, 0x5000, "/old"));
  set.add(entry(0x3000, 0x4000, "/new"));
  EXPECT_EQ(path_at(set, 0x2000), "/old");
  EXPECT_EQ(path_at(set, 0x3000), "/new");
  EXPECT_EQ(path_at(set, 0x3fff), "/new");
  EXPECT_EQ(path_at(set, 0x4000), "/old");
  // Even when the newer one starts earlier.
  set.add(entry(0x0800, 0x1800, "/newest"));
  EXPECT_EQ(path_at(set, 0x1000), "/newest");
  EXPECT_EQ(path_at(set, 0x1800), "/old");
  EXPECT_EQ(set.all().size(), 3u);
}

TEST(MappingSet, ALongMappingEarlierInOrderIsStillFound) {
  // The backward scan must not stop at a short mapping in between.
  MappingSet set;
  set.add(entry(0x1000, 0x100000, "/long"));
  set.add(entry(0x2000, 0x3000, "/short"));
  set.add(entry(0x4000, 0x5000, "/short2"));
  EXPECT_EQ(path_at(set, 0x6000), "/long");
  EXPECT_EQ(path_at(set, 0x4800), "/short2");
}

}  // namespace
}  // namespace cpprof::symbolize

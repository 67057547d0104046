#include "symbolize/proc_maps.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <string>

namespace cpprof::symbolize {
namespace {

TEST(ProcMaps, ParsesEveryFieldOfAFileMapping) {
  auto entries = parse_proc_maps(
      "7fc3cf211000-7fc3cf367000 r-xp 00026000 fe:00 332835                     "
      "/usr/lib/x86_64-linux-gnu/libc.so.6\n");
  ASSERT_EQ(entries.size(), 1u);
  const MapsEntry& e = entries[0];
  EXPECT_EQ(e.start, 0x7fc3cf211000u);
  EXPECT_EQ(e.limit, 0x7fc3cf367000u);
  EXPECT_EQ(e.perms, "r-xp");
  EXPECT_TRUE(e.executable());
  EXPECT_EQ(e.offset, 0x26000u);
  EXPECT_EQ(e.dev_major, 0xfeu);
  EXPECT_EQ(e.dev_minor, 0u);
  EXPECT_EQ(e.inode, 332835u);
  EXPECT_EQ(e.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_FALSE(e.deleted);
}

TEST(ProcMaps, AnonymousAndPseudoMappings) {
  auto entries = parse_proc_maps(
      "7fc3cf168000-7fc3cf18a000 rw-p 00000000 00:00 0 \n"
      "7fc3cf3e0000-7fc3cf3e2000 r-xp 00000000 00:00 0                          [vdso]\n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n");
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].path, "");
  EXPECT_EQ(entries[0].inode, 0u);
  EXPECT_FALSE(entries[0].executable());
  EXPECT_EQ(entries[1].path, "[vdso]");
  EXPECT_TRUE(entries[1].executable());
  EXPECT_EQ(entries[2].start, 0xffffffffff600000u);
  EXPECT_EQ(entries[2].path, "[vsyscall]");
}

TEST(ProcMaps, KeepsSpacesInsidePaths) {
  auto entries = parse_proc_maps("1000-2000 r-xp 00001000 08:01 42      /opt/my app/lib  two.so\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].path, "/opt/my app/lib  two.so");
}

TEST(ProcMaps, StripsDeletedSuffixAndRemembersIt) {
  auto entries = parse_proc_maps(
      "1000-2000 r-xp 00000000 08:01 42 /tmp/libplugin.so (deleted)\n"
      "3000-4000 r-xp 00000000 08:01 43 /tmp/a file (deleted)\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].path, "/tmp/libplugin.so");
  EXPECT_TRUE(entries[0].deleted);
  EXPECT_EQ(entries[1].path, "/tmp/a file");
  EXPECT_TRUE(entries[1].deleted);
}

TEST(ProcMaps, ParsesALastLineWithoutNewline) {
  auto entries = parse_proc_maps("1000-2000 r-xp 00000000 08:01 42 /a\n3000-4000 r--p 0 0:0 0 /b");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].path, "/b");
  EXPECT_EQ(entries[1].start, 0x3000u);
}

TEST(ProcMaps, SkipsMalformedLinesButKeepsTheirNeighbours) {
  const char* bad_lines[] = {
      "",
      "garbage",
      "1000 r-xp 00000000 08:01 42 /no/dash",
      "1000-2000",
      "1000-2000 r-xp",
      "1000-2000 r-xp 00000000 08:01",
      "1000-2000 r-xp 00000000 0801 42 /no/colon",
      "2000-1000 r-xp 00000000 08:01 42 /limit/below/start",
      "1000-1000 r-xp 00000000 08:01 42 /empty/range",
      "1000-2000 r-x 00000000 08:01 42 /short/perms",
      "1000-2000 r-xpq 00000000 08:01 42 /long/perms",
      "1000-2000 r-xp 0000zz00 08:01 42 /bad/offset",
      "1000-2000 r-xp 00000000 08:01 42x/junk/after/inode",
      "1000-2000 r-xp 00000000 08:01 99999999999999999999999 /inode/overflow",
      "10000000000000000-10000000000000001 r-xp 0 08:01 1 /address/overflow",
      "1000-2000 r-xp 00000000 123456789:01 42 /major/overflow",
      "-1000-2000 r-xp 00000000 08:01 42 /leading/dash",
  };
  for (const char* bad : bad_lines) {
    std::string text = std::string("a000-b000 r-xp 0 08:01 1 /before\n") + bad +
                       "\nc000-d000 r-xp 0 08:01 2 /after\n";
    auto entries = parse_proc_maps(text);
    ASSERT_EQ(entries.size(), 2u) << "line: " << bad;
    EXPECT_EQ(entries[0].path, "/before");
    EXPECT_EQ(entries[1].path, "/after");
  }
}

TEST(ProcMaps, AcceptsTheLargestAddresses) {
  auto entries = parse_proc_maps("fffffffffffff000-ffffffffffffffff r-xp 0 0:0 0 [top]\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].limit, UINT64_MAX);
}

[[gnu::noinline]] int function_in_this_binary(int x) { return x * 3 + 1; }

TEST(ProcMaps, OwnMapsHoldThisFunctionInAnExecutableMappingOfThisBinary) {
  std::string text;
  ASSERT_TRUE(read_proc_maps(&text));
  auto entries = parse_proc_maps(text);
  ASSERT_GT(entries.size(), 3u);
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  ASSERT_GT(n, 0);
  exe[n] = '\0';
  auto address = reinterpret_cast<uint64_t>(&function_in_this_binary);
  int holders = 0;
  for (const MapsEntry& e : entries) {
    if (address >= e.start && address < e.limit) {
      ++holders;
      EXPECT_TRUE(e.executable());
      EXPECT_EQ(e.path, exe);
      EXPECT_NE(e.inode, 0u);
    }
  }
  EXPECT_EQ(holders, 1);
  // Every line of the kernel's text parses: none is malformed.
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  EXPECT_EQ(entries.size(), lines);
}

}  // namespace
}  // namespace cpprof::symbolize

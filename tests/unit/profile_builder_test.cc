// ProfileBuilder over the real Symbolizer, on functions of this test binary.
#include "profile/builder.h"

#include <dlfcn.h>
#include <elf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <link.h>
#include <unistd.h>

#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "profile/pprof_encoder.h"
#include "support/pprof_tool.h"
#include "symbolize/symbolizer.h"

namespace cpprof::profile {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Filled by the functions below: a return address inside each caller.
volatile uint64_t g_return_address_in_caller = 0;
volatile uint64_t g_return_address_in_inlined = 0;
volatile int g_sink = 0;

[[gnu::noinline]] int builder_test_leaf(int x) {
  g_return_address_in_caller =
      reinterpret_cast<uint64_t>(__builtin_extract_return_addr(__builtin_return_address(0)));
  asm volatile("" ::: "memory");  // keeps the body from being folded or cloned away
  return x * 3 + 1;
}

[[gnu::noinline]] int builder_test_caller(int x) { return builder_test_leaf(x) + 2; }

[[gnu::noinline]] void builder_test_note_return() {
  g_return_address_in_inlined =
      reinterpret_cast<uint64_t>(__builtin_extract_return_addr(__builtin_return_address(0)));
  asm volatile("" ::: "memory");
}

// The lines of the two calls, counted from here.
constexpr int kNoteReturnLine = __LINE__ + 3;
constexpr int kInlinedCallLine = __LINE__ + 7;
[[gnu::always_inline]] inline void builder_test_inlined() {
  builder_test_note_return();
  g_sink = g_sink + 1;
}

[[gnu::noinline]] void builder_test_inliner() {
  builder_test_inlined();
  g_sink = g_sink + 2;
}

uint64_t address_of(auto* function) { return reinterpret_cast<uint64_t>(function); }

// Caller frames hold return address minus 1, as the builder's contract says.
uint64_t caller_address() {
  g_sink = builder_test_caller(4);
  return g_return_address_in_caller - 1;
}

std::string exe_path() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// The main program's GNU build-id from its loaded PT_NOTE segment, read here
// rather than trusted from the symbolizer.
std::string exe_build_id() {
  std::string id;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_NOTE) continue;
          const auto* p = reinterpret_cast<const uint8_t*>(info->dlpi_addr + ph.p_vaddr);
          const uint8_t* end = p + ph.p_memsz;
          while (p + sizeof(ElfW(Nhdr)) <= end) {
            const auto* note = reinterpret_cast<const ElfW(Nhdr)*>(p);
            const uint8_t* name = p + sizeof(ElfW(Nhdr));
            const uint8_t* desc = name + ((note->n_namesz + 3) & ~3u);
            if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 &&
                std::string_view(reinterpret_cast<const char*>(name), 3) == "GNU") {
              auto* hex = static_cast<std::string*>(out);
              for (uint32_t b = 0; b < note->n_descsz; ++b) {
                char byte[3];
                snprintf(byte, sizeof byte, "%02x", desc[b]);
                hex->append(byte);
              }
              return 1;
            }
            p = desc + ((note->n_descsz + 3) & ~3u);
          }
        }
        return 1;  // the first object is the main program: stop either way
      },
      &id);
  return id;
}

ProfileBuilder cpu_builder(symbolize::Symbolizer& symbolizer) {
  return ProfileBuilder(symbolizer, {{"samples", "count"}, {"cpu", "nanoseconds"}},
                        {"cpu", "nanoseconds"}, 10'000'000);
}

std::vector<std::string> function_names(const Profile& p, const Location& loc) {
  std::vector<std::string> names;
  for (const Line& line : loc.lines) {
    EXPECT_GE(line.function_id, 1u);
    EXPECT_LE(line.function_id, p.functions.size());
    names.push_back(p.functions.at(line.function_id - 1).name);
  }
  return names;
}

template <typename T>
void expect_ids_are_one_to_n(const std::vector<T>& items, const char* what) {
  for (size_t i = 0; i < items.size(); ++i) EXPECT_EQ(items[i].id, i + 1) << what << " " << i;
}

TEST(ProfileBuilder, SymbolizesFunctionsOfThisBinary) {
  symbolize::Symbolizer symbolizer;
  ProfileBuilder builder = cpu_builder(symbolizer);
  const uint64_t leaf = address_of(&builder_test_leaf);
  const uint64_t caller = caller_address();
  const int64_t values[] = {2, 20'000'000};
  builder.add_sample(std::vector<uint64_t>{leaf, caller}, values);
  const Profile p = builder.build();

  ASSERT_EQ(p.samples.size(), 1u);
  ASSERT_EQ(p.samples[0].location_ids.size(), 2u);
  EXPECT_THAT(p.samples[0].values, ElementsAre(2, 20'000'000));
  ASSERT_EQ(p.locations.size(), 2u);
  const Location& leaf_loc = p.locations.at(p.samples[0].location_ids[0] - 1);
  const Location& caller_loc = p.locations.at(p.samples[0].location_ids[1] - 1);
  EXPECT_EQ(leaf_loc.address, leaf);
  EXPECT_EQ(caller_loc.address, caller);
  ASSERT_FALSE(leaf_loc.lines.empty());
  ASSERT_FALSE(caller_loc.lines.empty());
  EXPECT_THAT(function_names(p, leaf_loc).front(), HasSubstr("builder_test_leaf"));
  EXPECT_THAT(function_names(p, caller_loc).back(), HasSubstr("builder_test_caller"));
  EXPECT_THAT(p.functions.at(leaf_loc.lines[0].function_id - 1).system_name,
              HasSubstr("builder_test_leaf"));

  // Ids from 1, unique, and every reference resolves.
  expect_ids_are_one_to_n(p.locations, "location");
  expect_ids_are_one_to_n(p.functions, "function");
  expect_ids_are_one_to_n(p.mappings, "mapping");
  for (const Location& loc : p.locations) {
    EXPECT_GE(loc.mapping_id, 1u);
    EXPECT_LE(loc.mapping_id, p.mappings.size());
  }

  // Both frames lie in this binary, whose mapping comes first and carries its build-id.
  ASSERT_FALSE(p.mappings.empty());
  const Mapping& exe = p.mappings[0];
  EXPECT_EQ(exe.filename, exe_path());
  EXPECT_FALSE(exe.build_id.empty());
  EXPECT_EQ(exe.build_id, exe_build_id());
  EXPECT_LE(exe.memory_start, leaf);
  EXPECT_GT(exe.memory_limit, leaf);
  EXPECT_TRUE(exe.has_functions);
  EXPECT_EQ(leaf_loc.mapping_id, exe.id);
  EXPECT_EQ(caller_loc.mapping_id, exe.id);
}

TEST(ProfileBuilder, PprofReadsTheBuiltProfile) {
  symbolize::Symbolizer symbolizer;
  ProfileBuilder builder = cpu_builder(symbolizer);
  const int64_t values[] = {3, 30'000'000};
  builder.add_sample(std::vector<uint64_t>{address_of(&builder_test_leaf), caller_address()},
                     values);
  const int64_t lost[] = {1, 10'000'000};
  builder.add_synthetic_sample("(lost samples)", lost);
  builder.set_time(1'700'000'000'000'000'000, 2'000'000'000);
  builder.set_default_sample_type("cpu");
  builder.add_comment("built by profile_builder_test");

  test::RawProfile raw;
  ASSERT_TRUE(test::read_raw(encode_pprof_gz(builder.build()), &raw));
  ASSERT_EQ(raw.samples.size(), 2u);
  const std::vector<std::string> stack = raw.stack(raw.samples[0]);
  ASSERT_GE(stack.size(), 2u);
  EXPECT_THAT(stack.front(), HasSubstr("builder_test_leaf"));
  EXPECT_THAT(stack.back(), HasSubstr("builder_test_caller"));
  EXPECT_THAT(raw.samples[0].values, ElementsAre(3, 30'000'000));
  EXPECT_THAT(raw.stack(raw.samples[1]), ElementsAre("(lost samples)"));
  EXPECT_EQ(raw.location(raw.samples[1].location_ids[0])->mapping_id, 0u);
  EXPECT_EQ(raw.period, 10'000'000);
  EXPECT_EQ(raw.duration_nanos, 2'000'000'000);
  EXPECT_EQ(raw.time_nanos, 1'700'000'000'000'000'000);
  EXPECT_EQ(raw.default_sample_type, "cpu");
  EXPECT_THAT(raw.comments, ElementsAre("built by profile_builder_test"));
  ASSERT_FALSE(raw.mappings.empty());
  EXPECT_EQ(raw.mappings[0].filename, exe_path());
  EXPECT_EQ(raw.mappings[0].build_id, exe_build_id());
  EXPECT_TRUE(raw.mappings[0].has_functions);
}

TEST(ProfileBuilder, InternsLocationsByAddressAndFunctionsByName) {
  symbolize::Symbolizer symbolizer;
  ProfileBuilder builder = cpu_builder(symbolizer);
  const uint64_t leaf = address_of(&builder_test_leaf);
  const int64_t values[] = {1, 1};
  builder.add_sample(std::vector<uint64_t>{leaf}, values);
  builder.add_sample(std::vector<uint64_t>{leaf, leaf + 1}, values);  // same function twice
  builder.add_synthetic_sample("(lost samples)", values);
  builder.add_synthetic_sample("(lost samples)", values);
  const Profile p = builder.build();

  ASSERT_EQ(p.samples.size(), 4u);  // not merged: the caller aggregates
  EXPECT_EQ(p.samples[0].location_ids[0], p.samples[1].location_ids[0]);
  EXPECT_NE(p.samples[1].location_ids[0], p.samples[1].location_ids[1]);
  EXPECT_EQ(p.samples[2].location_ids, p.samples[3].location_ids);
  EXPECT_EQ(p.locations.size(), 3u);
  ASSERT_EQ(p.functions.size(), 2u);  // builder_test_leaf and (lost samples)
  std::set<std::string> names;
  for (const Function& f : p.functions) names.insert(f.name);
  EXPECT_EQ(names.size(), 2u);
  EXPECT_EQ(names.count("(lost samples)"), 1u);
}

TEST(ProfileBuilder, SyntheticFrameHasFunctionButNoMapping) {
  symbolize::Symbolizer symbolizer;
  ProfileBuilder builder = cpu_builder(symbolizer);
  const int64_t values[] = {7, 70};
  builder.add_synthetic_sample("(lost samples)", values);
  const Profile p = builder.build();
  ASSERT_EQ(p.locations.size(), 1u);
  EXPECT_EQ(p.locations[0].mapping_id, 0u);
  ASSERT_EQ(p.locations[0].lines.size(), 1u);
  EXPECT_EQ(p.functions.at(p.locations[0].lines[0].function_id - 1).name, "(lost samples)");
}

TEST(ProfileBuilder, UnknownAddressKeepsLocationWithoutLines) {
  symbolize::Symbolizer symbolizer;
  ProfileBuilder builder = cpu_builder(symbolizer);
  const int64_t values[] = {1, 1};
  builder.add_sample(std::vector<uint64_t>{0x10, address_of(&builder_test_leaf)}, values);
  const Profile p = builder.build();
  ASSERT_EQ(p.locations.size(), 2u);
  const Location& unknown = p.locations.at(p.samples[0].location_ids[0] - 1);
  EXPECT_EQ(unknown.address, 0x10u);
  EXPECT_EQ(unknown.mapping_id, 0u);
  EXPECT_TRUE(unknown.lines.empty());

  test::RawProfile raw;
  ASSERT_TRUE(test::read_raw(encode_pprof_gz(p), &raw));
  ASSERT_EQ(raw.samples.size(), 1u);
  EXPECT_EQ(raw.stack(raw.samples[0]).front(), "0x10");
}

TEST(ProfileBuilder, MainExecutableMappingComesFirst) {
  symbolize::Symbolizer symbolizer;
  ProfileBuilder builder = cpu_builder(symbolizer);
  // Only a libc frame: the executable must still lead the mapping list.
  // From libc itself: under ASan the default lookup finds ASan's interceptor.
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(libc, nullptr);
  const uint64_t in_libc = reinterpret_cast<uint64_t>(dlsym(libc, "write"));
  dlclose(libc);
  ASSERT_NE(in_libc, 0u);
  const int64_t values[] = {1, 1};
  builder.add_sample(std::vector<uint64_t>{in_libc}, values);
  const Profile p = builder.build();

  ASSERT_EQ(p.mappings.size(), 2u);
  expect_ids_are_one_to_n(p.mappings, "mapping");
  EXPECT_EQ(p.mappings[0].filename, exe_path());
  EXPECT_THAT(p.mappings[1].filename, HasSubstr("libc"));
  EXPECT_LE(p.mappings[1].memory_start, in_libc);
  EXPECT_GT(p.mappings[1].memory_limit, in_libc);
  ASSERT_EQ(p.locations.size(), 1u);
  EXPECT_EQ(p.locations[0].mapping_id, 2u);
  EXPECT_FALSE(p.mappings[0].has_functions);  // no location of it was symbolized
  ASSERT_FALSE(p.locations[0].lines.empty());
  EXPECT_THAT(function_names(p, p.locations[0]).front(), HasSubstr("write"));
  EXPECT_TRUE(p.mappings[1].has_functions);
}

TEST(ProfileBuilder, InlinedFramesComeInnermostFirst) {
  ASSERT_TRUE(symbolize::Symbolizer::dwarf_available());
  symbolize::Symbolizer symbolizer;
  ProfileBuilder builder = cpu_builder(symbolizer);
  builder_test_inliner();
  const int64_t values[] = {1, 1};
  builder.add_sample(std::vector<uint64_t>{g_return_address_in_inlined - 1}, values);
  const Profile p = builder.build();
  ASSERT_EQ(p.locations.size(), 1u);
  const Mapping& exe = p.mappings[0];
  EXPECT_TRUE(exe.has_functions);
  EXPECT_TRUE(exe.has_filenames);
  EXPECT_TRUE(exe.has_line_numbers);
  EXPECT_TRUE(exe.has_inline_frames);
  const Location& loc = p.locations[0];
  const std::vector<std::string> names = function_names(p, loc);
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0], "cpprof::profile::(anonymous namespace)::builder_test_inlined");
  EXPECT_EQ(names[1], "cpprof::profile::(anonymous namespace)::builder_test_inliner");
  EXPECT_EQ(loc.lines[0].line, kNoteReturnLine);
  EXPECT_EQ(loc.lines[1].line, kInlinedCallLine);
  const Function& inlined = p.functions.at(loc.lines[0].function_id - 1);
  const Function& inliner = p.functions.at(loc.lines[1].function_id - 1);
  EXPECT_EQ(inlined.filename, __FILE__);
  EXPECT_EQ(inliner.filename, __FILE__);
  EXPECT_EQ(inlined.start_line, kNoteReturnLine - 1);  // where it is declared
  EXPECT_EQ(inliner.start_line, kInlinedCallLine - 1);
}

// What users run: the inlined function and its caller, each at its
// file:line, as `go tool pprof -lines` shows them.
TEST(ProfileBuilder, PprofShowsInlinedFramesWithTheirLines) {
  ASSERT_TRUE(symbolize::Symbolizer::dwarf_available());
  symbolize::Symbolizer symbolizer;
  ProfileBuilder builder = cpu_builder(symbolizer);
  builder_test_inliner();
  const int64_t values[] = {5, 50'000'000};
  builder.add_sample(std::vector<uint64_t>{g_return_address_in_inlined - 1}, values);
  const std::string bytes = encode_pprof_gz(builder.build());

  test::RawProfile raw;
  ASSERT_TRUE(test::read_raw(bytes, &raw));
  ASSERT_EQ(raw.locations.size(), 1u);
  const test::RawLocation& loc = raw.locations[0];
  ASSERT_EQ(loc.lines.size(), 2u);
  EXPECT_THAT(loc.lines[0].function, HasSubstr("builder_test_inlined"));
  EXPECT_EQ(loc.lines[0].file, __FILE__);
  EXPECT_EQ(loc.lines[0].line, kNoteReturnLine);
  EXPECT_THAT(loc.lines[1].function, HasSubstr("builder_test_inliner"));
  EXPECT_EQ(loc.lines[1].file, __FILE__);
  EXPECT_EQ(loc.lines[1].line, kInlinedCallLine);
  ASSERT_FALSE(raw.mappings.empty());
  EXPECT_TRUE(raw.mappings[0].has_inline_frames);

  const test::PprofResult top = test::run_pprof_on_bytes(bytes, {"-lines", "-top"});
  ASSERT_TRUE(top.ok()) << top.err;
  // pprof prints "name file:line", and marks inlined frames.
  EXPECT_THAT(top.out, HasSubstr("builder_test_inlined " + std::string(__FILE__) + ":" +
                                 std::to_string(kNoteReturnLine) + " (inline)"))
      << top.out;
  EXPECT_THAT(top.out, HasSubstr("builder_test_inliner " + std::string(__FILE__) + ":" +
                                 std::to_string(kInlinedCallLine) + "\n"))
      << top.out;
}

TEST(ProfileBuilder, RejectsWrongNumberOfValues) {
  symbolize::Symbolizer symbolizer;
  ProfileBuilder builder = cpu_builder(symbolizer);
  const int64_t one[] = {1};
  EXPECT_THROW(builder.add_sample(std::vector<uint64_t>{address_of(&builder_test_leaf)}, one),
               std::invalid_argument);
  EXPECT_THROW(builder.add_synthetic_sample("(lost samples)", one), std::invalid_argument);
}

}  // namespace
}  // namespace cpprof::profile

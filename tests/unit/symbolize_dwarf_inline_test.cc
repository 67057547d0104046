// The Symbolizer with libdw, on code of this test binary: files, lines and
// inlined frames, checked against __FILE__ and __LINE__ captured beside the
// code; and the ELF-only answers where there is no DWARF.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "symbolize/dw_library.h"
#include "symbolize/elf_file.h"
#include "symbolize/symbolizer.h"

namespace cpprof_dwarf_test {

volatile int g_sink = 0;

// Where note_call was called from: the call instruction (return address
// minus 1, as profiles hold callers), and the line of that call.
struct Call {
  uint64_t address = 0;
  int line = 0;
};

[[gnu::noinline]] void note_call(Call* call, int at_line) {
  call->address =
      reinterpret_cast<uint64_t>(__builtin_extract_return_addr(__builtin_return_address(0))) - 1;
  call->line = at_line;
  asm volatile("" ::: "memory");
}

const int kInnerDeclLine = __LINE__ + 1;
[[gnu::always_inline]] inline void inner_inlined(Call* call, int* call_line, int from) {
  *call_line = from;
  note_call(call, __LINE__);
  g_sink = g_sink + 1;  // keeps the call from becoming a tail jump
}

// Inlined itself, and inlines inner_inlined: two levels.
[[gnu::always_inline]] inline void middle_inlined(Call* call, int* lines, int from) {
  lines[0] = from;
  inner_inlined(call, &lines[1], __LINE__);
  g_sink = g_sink + 2;
}

namespace ns {
struct Holder {
  [[gnu::noinline]] static void outer_function(Call* call, int* lines);
};

const int kOuterDeclLine = __LINE__ + 1;
void Holder::outer_function(Call* call, int* lines) {
  middle_inlined(call, lines, __LINE__);
  g_sink = g_sink + 3;
}
}  // namespace ns

namespace {
// Internal linkage: GCC gives these no linkage name, so the Symbolizer
// builds the qualified name from where their entries sit in DWARF.
struct Widget {
  [[gnu::always_inline]] static void inlined_member(Call* call) {
    note_call(call, __LINE__);
    g_sink = g_sink + 5;
  }
};

[[gnu::noinline]] void calls_widget(Call* call) {
  Widget::inlined_member(call);
  g_sink = g_sink + 6;
}
}  // namespace

void call_widget(Call* call) { calls_widget(call); }

[[gnu::noinline]] void plain_function(Call* call) {
  note_call(call, __LINE__);
  g_sink = g_sink + 4;
}

}  // namespace cpprof_dwarf_test

namespace cpprof::symbolize {
namespace {

using cpprof_dwarf_test::Call;

// libc's own `name`: RTLD_DEFAULT could find a sanitizer's interceptor first.
uint64_t libc_function(const char* name) {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  return libc != nullptr ? reinterpret_cast<uint64_t>(dlsym(libc, name)) : 0;
}

TEST(SymbolizerDwarf, LibdwIsAvailable) {
  // libdw-dev, which the build needs, brings libdw.so.1: without it every
  // other test here would only show the ELF fallback.
  ASSERT_TRUE(Symbolizer::dwarf_available());
  EXPECT_EQ(load_dw_library("libcpprof-no-such-library.so.1"), nullptr);
}

TEST(SymbolizerDwarf, InlinedCallsYieldOneFrameEachInnermostFirst) {
  ASSERT_TRUE(Symbolizer::dwarf_available());
  Call call;
  int lines[2] = {0, 0};  // where middle_inlined and inner_inlined were called
  cpprof_dwarf_test::ns::Holder::outer_function(&call, lines);
  ASSERT_NE(call.address, 0u);

  Symbolizer s;
  std::vector<Frame> frames = s.symbolize(call.address);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].function, "cpprof_dwarf_test::inner_inlined");
  EXPECT_EQ(frames[0].file, __FILE__);
  EXPECT_EQ(frames[0].line, call.line);
  EXPECT_EQ(frames[0].start_line, cpprof_dwarf_test::kInnerDeclLine);
  EXPECT_EQ(frames[0].function_start, 0u);  // inlined: no entry of its own

  EXPECT_EQ(frames[1].function, "cpprof_dwarf_test::middle_inlined");
  EXPECT_EQ(frames[1].file, __FILE__);
  EXPECT_EQ(frames[1].line, lines[1]);  // where it called inner_inlined

  EXPECT_EQ(frames[2].function, "cpprof_dwarf_test::ns::Holder::outer_function");
  EXPECT_EQ(frames[2].raw_name, "_ZN17cpprof_dwarf_test2ns6Holder14outer_functionEPNS_4CallEPi");
  EXPECT_EQ(frames[2].file, __FILE__);
  EXPECT_EQ(frames[2].line, lines[0]);  // where it called middle_inlined
  EXPECT_EQ(frames[2].start_line, cpprof_dwarf_test::ns::kOuterDeclLine);
  // The real function's entry, from the ELF symbol, as without DWARF.
  EXPECT_EQ(frames[2].function_start,
            reinterpret_cast<uint64_t>(&cpprof_dwarf_test::ns::Holder::outer_function));
  for (int line : {call.line, lines[0], lines[1]}) EXPECT_GT(line, 0);
  EXPECT_NE(lines[0], lines[1]);
}

TEST(SymbolizerDwarf, AFunctionThatWasNotInlinedGivesItsFileAndLine) {
  ASSERT_TRUE(Symbolizer::dwarf_available());
  Call call;
  cpprof_dwarf_test::plain_function(&call);
  Symbolizer s;
  std::vector<Frame> frames = s.symbolize(call.address);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "cpprof_dwarf_test::plain_function");
  EXPECT_EQ(frames[0].raw_name, "_ZN17cpprof_dwarf_test14plain_functionEPNS_4CallE");
  EXPECT_EQ(frames[0].file, __FILE__);
  EXPECT_EQ(frames[0].line, call.line);
  EXPECT_EQ(frames[0].function_start,
            reinterpret_cast<uint64_t>(&cpprof_dwarf_test::plain_function));
}

TEST(SymbolizerDwarf, FunctionsWithoutLinkageNamesAreQualifiedByTheirScopes) {
  ASSERT_TRUE(Symbolizer::dwarf_available());
  Call call;
  cpprof_dwarf_test::call_widget(&call);
  Symbolizer s;
  std::vector<Frame> frames = s.symbolize(call.address);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].function, "cpprof_dwarf_test::(anonymous namespace)::Widget::inlined_member");
  EXPECT_EQ(frames[0].line, call.line);
  EXPECT_EQ(frames[0].file, __FILE__);
  EXPECT_EQ(frames[1].function, "cpprof_dwarf_test::(anonymous namespace)::calls_widget");
}

TEST(SymbolizerDwarf, RepeatedLookupsGiveTheSameAnswer) {
  ASSERT_TRUE(Symbolizer::dwarf_available());
  Call call;
  int lines[2];
  cpprof_dwarf_test::ns::Holder::outer_function(&call, lines);
  Symbolizer s;
  std::vector<Frame> first = s.symbolize(call.address);
  std::vector<Frame> second = s.symbolize(call.address);  // from the cache
  ASSERT_EQ(first.size(), 3u);
  ASSERT_EQ(second.size(), first.size());
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(second[i].function, first[i].function);
    EXPECT_EQ(second[i].file, first[i].file);
    EXPECT_EQ(second[i].line, first[i].line);
    EXPECT_EQ(second[i].function_start, first[i].function_start);
  }
}

TEST(SymbolizerDwarf, WithoutDwarfTheAnswerIsTheElfSymbolAlone) {
  Call call;
  int lines[2];
  cpprof_dwarf_test::ns::Holder::outer_function(&call, lines);
  // What a host without libdw gets.
  Symbolizer s(SymbolizerOptions{.read_dwarf = false});
  std::vector<Frame> frames = s.symbolize(call.address);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "cpprof_dwarf_test::ns::Holder::outer_function");
  EXPECT_EQ(frames[0].file, "");
  EXPECT_EQ(frames[0].line, 0);
  EXPECT_EQ(frames[0].function_start,
            reinterpret_cast<uint64_t>(&cpprof_dwarf_test::ns::Holder::outer_function));
}

// A loaded system library with neither DWARF nor a debug file installed
// for it, and one of its exported functions.
bool pick_library_without_debug_info(std::string* soname, uint64_t* function) {
  struct Candidate {
    const char* soname;
    const char* function;
  };
  for (Candidate c :
       {Candidate{"libz.so.1", "zlibVersion"}, Candidate{"libstdc++.so.6", "_ZdlPv"},
        Candidate{"libgcc_s.so.1", "_Unwind_GetIP"}, Candidate{"libm.so.6", "cbrt"}}) {
    void* handle = dlopen(c.soname, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) continue;
    void* address = dlsym(handle, c.function);
    Dl_info info;
    // Handles stay open: the library must stay mapped for the test.
    if (address == nullptr || dladdr(address, &info) == 0) continue;
    std::unique_ptr<ElfFile> elf = ElfFile::open(info.dli_fname);
    if (!elf || elf->dwarf_file() != nullptr) continue;
    *soname = c.soname;
    *function = reinterpret_cast<uint64_t>(address);
    return true;
  }
  return false;
}

TEST(SymbolizerDwarf, ASystemLibraryWithoutDebugInfoStillGivesTheElfName) {
  std::string soname;
  uint64_t function = 0;
  if (!pick_library_without_debug_info(&soname, &function)) {
    GTEST_SKIP() << "every candidate library has debug info installed";
  }
  Symbolizer s;
  std::vector<Frame> frames = s.symbolize(function + 1);
  ASSERT_EQ(frames.size(), 1u) << soname;
  EXPECT_FALSE(frames[0].function.empty()) << soname;
  EXPECT_EQ(frames[0].file, "") << soname;
  EXPECT_EQ(frames[0].line, 0) << soname;
  EXPECT_EQ(frames[0].function_start, function) << soname;
}

TEST(SymbolizerDwarf, LibcKeepsItsExportedNameWhateverDebugInfoIsInstalled) {
  uint64_t qsort_address = libc_function("qsort");
  ASSERT_NE(qsort_address, 0u);
  Symbolizer s;
  std::vector<Frame> frames = s.symbolize(qsort_address + 4);
  ASSERT_FALSE(frames.empty());
  // Not glibc's internal alias "__GI_qsort", which its DWARF calls it.
  EXPECT_EQ(frames.back().function, "qsort");
  EXPECT_EQ(frames.back().function_start, qsort_address);
  Mapping m;
  ASSERT_TRUE(s.find_mapping(qsort_address, &m));
  std::unique_ptr<ElfFile> libc = ElfFile::open(m.path);
  ASSERT_NE(libc, nullptr);
  if (libc->dwarf_file() == nullptr) {
    EXPECT_EQ(frames.back().file, "");
  } else {
    // libc6-dbg is installed: the file comes from its DWARF (with compressed
    // sections, and a relative compilation directory): msort.c or qsort.c.
    EXPECT_TRUE(frames.back().file.ends_with("sort.c")) << frames.back().file;
    EXPECT_NE(frames.back().file.find("stdlib/"), std::string::npos) << frames.back().file;
    EXPECT_EQ(frames.back().file.find("stdlib/./stdlib"), std::string::npos) << frames.back().file;
    EXPECT_GT(frames.back().line, 0);
  }
}

}  // namespace
}  // namespace cpprof::symbolize

// The Symbolizer with libdw on a shared library of the test tree
// (symbolize_dwarf_test_lib.cc), dlopen()ed and dlclose()d: lines and
// inlined frames while it is loaded, after it is gone, and after its file
// is deleted; from its own DWARF, without .debug_aranges, and from a
// separate debug file.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "symbolize/elf_file.h"
#include "symbolize/elf_image.h"
#include "symbolize/mapped_file.h"
#include "symbolize/proc_maps.h"
#include "symbolize/symbolizer.h"
#include "symbolize_dwarf_test_lib.h"

namespace cpprof::symbolize {
namespace {

namespace fs = std::filesystem;

std::string library_path(const std::string& variant) {
  return std::string(CPPROF_TEST_BINARY_DIR) + "/lib/libsymbolize_dwarf_lib_" + variant + ".so";
}

// A fresh directory, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "cpprof_dwarf_").string() + "XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Whether code from `path` is mapped in this process.
bool code_is_mapped(const std::string& path) {
  std::string text;
  read_proc_maps(&text);
  for (const MapsEntry& e : parse_proc_maps(text)) {
    if (e.executable() && e.path.find(path) != std::string::npos) return true;
  }
  return false;
}

// The library at `path` loaded, probed, and still loaded.
struct Loaded {
  void* handle = nullptr;
  DwarfLibProbe probe;
  std::string file;  // probe.file points into the library: gone with dlclose
};

::testing::AssertionResult load_and_probe(const std::string& path, Loaded* out) {
  out->handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (out->handle == nullptr) return ::testing::AssertionFailure() << dlerror();
  auto probe = reinterpret_cast<decltype(&symbolize_dwarf_lib_probe)>(
      dlsym(out->handle, "symbolize_dwarf_lib_probe"));
  if (probe == nullptr) return ::testing::AssertionFailure() << "no probe in " << path;
  probe(&out->probe);
  if (out->probe.inlined_address == 0 || out->probe.plain_address == 0 ||
      out->probe.file == nullptr) {
    return ::testing::AssertionFailure() << "the probe recorded nothing";
  }
  out->file = out->probe.file;
  out->probe.file = nullptr;
  return ::testing::AssertionSuccess();
}

// The inlined call and the plain one resolve to the lines the library
// recorded, in its source file.
void expect_library_frames(Symbolizer& s, const Loaded& lib) {
  const DwarfLibProbe& probe = lib.probe;
  std::vector<Frame> inlined = s.symbolize(probe.inlined_address);
  ASSERT_EQ(inlined.size(), 2u);
  EXPECT_EQ(inlined[0].function, "dwarf_test_lib::lib_inlined_callee");
  EXPECT_EQ(inlined[0].file, lib.file);
  EXPECT_EQ(inlined[0].line, probe.inlined_line);
  EXPECT_EQ(inlined[1].function, "dwarf_test_lib::lib_inlining_caller");
  EXPECT_EQ(inlined[1].file, lib.file);
  EXPECT_EQ(inlined[1].line, probe.call_line);
  EXPECT_NE(inlined[1].function_start, 0u);
  EXPECT_LT(inlined[1].function_start, probe.inlined_address);

  std::vector<Frame> plain = s.symbolize(probe.plain_address);
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(plain[0].function, "dwarf_test_lib::lib_plain_function");
  EXPECT_EQ(plain[0].file, lib.file);
  EXPECT_EQ(plain[0].line, probe.plain_line);
}

class DwarfLibrary : public ::testing::TestWithParam<const char*> {};

TEST_P(DwarfLibrary, ResolvesWithLinesWhileLoadedAndAfterDlclose) {
  ASSERT_TRUE(Symbolizer::dwarf_available());
  const std::string path = library_path(GetParam());
  Loaded lib;
  ASSERT_TRUE(load_and_probe(path, &lib));
  Symbolizer early;  // reads the DWARF while the library is loaded
  Symbolizer late;   // only sees the mapping then, reads the DWARF after dlclose
  late.refresh();
  {
    SCOPED_TRACE("loaded");
    expect_library_frames(early, lib);
  }
  ASSERT_EQ(dlclose(lib.handle), 0);
  ASSERT_FALSE(code_is_mapped(path)) << path << " stayed mapped after dlclose";
  SCOPED_TRACE("after dlclose");
  expect_library_frames(early, lib);
  expect_library_frames(late, lib);
}

INSTANTIATE_TEST_SUITE_P(Variants, DwarfLibrary,
                         ::testing::Values("plain", "noaranges", "debuglink"));

// The builds differ as the tests above assume, or they would prove nothing.
TEST(DwarfLibraryBuilds, DifferWhereTheyShould) {
  auto image_of = [](const std::string& path, std::unique_ptr<MappedFile>* file) {
    *file = MappedFile::open(path);
    return *file ? ElfImage::parse((*file)->bytes()) : std::nullopt;
  };
  std::unique_ptr<MappedFile> plain_file, noaranges_file, debuglink_file;
  std::optional<ElfImage> plain = image_of(library_path("plain"), &plain_file);
  std::optional<ElfImage> noaranges = image_of(library_path("noaranges"), &noaranges_file);
  std::optional<ElfImage> debuglink = image_of(library_path("debuglink"), &debuglink_file);
  ASSERT_TRUE(plain && noaranges && debuglink);
  EXPECT_NE(plain->find_section(".debug_aranges"), nullptr);
  EXPECT_NE(noaranges->find_section(".debug_info"), nullptr);
  EXPECT_EQ(noaranges->find_section(".debug_aranges"), nullptr);
  EXPECT_EQ(debuglink->find_section(".debug_info"), nullptr);

  std::unique_ptr<ElfFile> elf = ElfFile::open(library_path("debuglink"));
  ASSERT_NE(elf, nullptr);
  ASSERT_NE(elf->dwarf_file(), nullptr);
  std::optional<ElfImage> debug = ElfImage::parse(elf->dwarf_file()->bytes());
  ASSERT_TRUE(debug);
  EXPECT_NE(debug->find_section(".debug_info"), nullptr);
  EXPECT_EQ(debug->build_id(), elf->build_id());
}

TEST(DwarfLibraryBuilds, AnObjectWithoutDwarfHasNoDwarfFile) {
  std::unique_ptr<ElfFile> elf =
      ElfFile::open(library_path("debuglink"), ElfFile::Options{
                                                   .use_debug_file = false,
                                               });
  ASSERT_NE(elf, nullptr);
  EXPECT_EQ(elf->dwarf_file(), nullptr);
}

TEST(DwarfLibraryDeleted, ResolvesFromTheFileTheSymbolizerKeptMapped) {
  ASSERT_TRUE(Symbolizer::dwarf_available());
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string copy = dir.path() + "/libdeleted_copy.so";
  fs::copy_file(library_path("plain"), copy);
  Loaded lib;
  ASSERT_TRUE(load_and_probe(copy, &lib));
  Symbolizer s;
  s.refresh();  // maps the file, reads no DWARF yet
  ASSERT_EQ(dlclose(lib.handle), 0);
  ASSERT_FALSE(code_is_mapped(copy));
  fs::remove(copy);
  ASSERT_FALSE(fs::exists(copy));

  // Only the Symbolizer's own mapping of the file is left; libdw reaches it
  // through /proc/self/map_files, where a kernel allows that.
  std::string text;
  read_proc_maps(&text);
  bool readable = false;
  for (const MapsEntry& e : parse_proc_maps(text)) {
    if (e.path.find("libdeleted_copy.so") == std::string::npos) continue;
    char map_file[80];
    std::snprintf(map_file, sizeof(map_file), "/proc/self/map_files/%lx-%lx",
                  static_cast<unsigned long>(e.start), static_cast<unsigned long>(e.limit));
    readable = access(map_file, R_OK) == 0;
  }
  if (!readable) GTEST_SKIP() << "/proc/self/map_files not readable here";
  expect_library_frames(s, lib);
}

}  // namespace
}  // namespace cpprof::symbolize

#include "symbolize/symbolizer.h"

#include <dlfcn.h>
#include <elf.h>
#include <gtest/gtest.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "symbolize/elf_file.h"
#include "symbolize/proc_maps.h"

namespace cpprof_test {
namespace ns {
const int kLeafLine = __LINE__ + 1;
[[gnu::noinline]] int leaf_function(int x) { return x * 5 + 2; }
}  // namespace ns

template <typename T>
[[gnu::noinline]] T twice(T x) {
  return x + x;
}
template int twice<int>(int);
}  // namespace cpprof_test

extern "C" [[gnu::noinline]] int cpprof_test_c_function(int x) { return x - 9; }

namespace cpprof::symbolize {
namespace {

namespace fs = std::filesystem;

// A fresh directory, removed with everything in it when the test ends,
// however it ends.
class TempDir {
 public:
  explicit TempDir(const char* prefix) {
    std::string pattern = (fs::temp_directory_path() / prefix).string() + "XXXXXX";
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

// libc's own `name`: RTLD_DEFAULT could find a sanitizer's interceptor first.
void* libc_function(const char* name) {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  return libc != nullptr ? dlsym(libc, name) : nullptr;
}

template <typename F>
uint64_t address_of(F* function) {
  return reinterpret_cast<uint64_t>(function);
}

std::string exe_path() {
  char buffer[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
}

std::string readelf_build_id(const std::string& path) {
  std::string out;
  FILE* pipe = popen(("readelf -n '" + path + "' 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  size_t at = out.find("Build ID: ");
  if (at == std::string::npos) return "";
  at += 10;
  return out.substr(at, out.find_first_of("\r\n", at) - at);
}

// The /proc/self/maps line holding `address`, read independently of the Symbolizer.
bool maps_entry_at(uint64_t address, MapsEntry* out) {
  std::string text;
  if (!read_proc_maps(&text)) return false;
  for (const MapsEntry& e : parse_proc_maps(text)) {
    if (address >= e.start && address < e.limit) {
      *out = e;
      return true;
    }
  }
  return false;
}

// Whether code from a file whose path contains `name` is mapped. Only code
// counts: the Symbolizer's own read-only view of the file shows up too.
bool is_mapped(const std::string& name) {
  std::string text;
  read_proc_maps(&text);
  for (const MapsEntry& e : parse_proc_maps(text)) {
    if (e.executable() && e.path.find(name) != std::string::npos) return true;
  }
  return false;
}

// The one frame at `address`; an empty Frame if there is not exactly one.
Frame frame_at(Symbolizer& s, uint64_t address) {
  std::vector<Frame> frames = s.symbolize(address);
  return frames.size() == 1 ? frames[0] : Frame{};
}

TEST(Symbolizer, FunctionsOfThisBinaryGetDemangledNamesAndStarts) {
  Symbolizer s;
  uint64_t leaf = address_of(&cpprof_test::ns::leaf_function);
  Frame f = frame_at(s, leaf + 3);
  EXPECT_EQ(f.function, "cpprof_test::ns::leaf_function");
  EXPECT_EQ(f.raw_name, "_ZN11cpprof_test2ns13leaf_functionEi");
  EXPECT_EQ(f.function_start, leaf);
  // This binary has DWARF (symbolize_dwarf_*_test check files and lines in depth).
  EXPECT_EQ(f.file, __FILE__);
  EXPECT_EQ(f.line, cpprof_test::ns::kLeafLine);
  EXPECT_EQ(frame_at(s, leaf).function_start, leaf);  // the first byte belongs too

  // Without DWARF, the same name and start, and no file or line.
  Symbolizer elf_only(SymbolizerOptions{.read_dwarf = false});
  f = frame_at(elf_only, leaf + 3);
  EXPECT_EQ(f.function, "cpprof_test::ns::leaf_function");
  EXPECT_EQ(f.raw_name, "_ZN11cpprof_test2ns13leaf_functionEi");
  EXPECT_EQ(f.function_start, leaf);
  EXPECT_EQ(f.file, "");
  EXPECT_EQ(f.line, 0);

  uint64_t tmpl = address_of(&cpprof_test::twice<int>);
  f = frame_at(s, tmpl + 1);
  EXPECT_EQ(f.function, "cpprof_test::twice");  // shortened as pprof shows it
  EXPECT_EQ(f.function_start, tmpl);

  uint64_t c = address_of(&cpprof_test_c_function);
  f = frame_at(s, c + 1);
  EXPECT_EQ(f.function, "cpprof_test_c_function");
  EXPECT_EQ(f.raw_name, "cpprof_test_c_function");
  EXPECT_EQ(f.function_start, c);
}

TEST(Symbolizer, LibcFunctionResolvesToItsExportedName) {
  Symbolizer s;
  uint64_t qsort_address = reinterpret_cast<uint64_t>(libc_function("qsort"));
  ASSERT_NE(qsort_address, 0u);
  Frame f = frame_at(s, qsort_address + 4);
  EXPECT_EQ(f.function, "qsort");
  EXPECT_EQ(f.function_start, qsort_address);
  Mapping m;
  ASSERT_TRUE(s.find_mapping(qsort_address, &m));
  EXPECT_NE(m.path.find("libc.so"), std::string::npos) << m.path;
  EXPECT_EQ(m.build_id, readelf_build_id(m.path));
}

TEST(Symbolizer, MappingOfThisBinaryMatchesProcMapsAndReadelf) {
  Symbolizer s;
  uint64_t leaf = address_of(&cpprof_test::ns::leaf_function);
  MapsEntry expected;
  ASSERT_TRUE(maps_entry_at(leaf, &expected));
  Mapping m;
  ASSERT_TRUE(s.find_mapping(leaf, &m));
  EXPECT_EQ(m.start, expected.start);
  EXPECT_EQ(m.limit, expected.limit);
  EXPECT_EQ(m.file_offset, expected.offset);
  EXPECT_EQ(m.path, exe_path());
  EXPECT_FALSE(m.build_id.empty());
  EXPECT_EQ(m.build_id, readelf_build_id(exe_path()));

  std::vector<Mapping> all = s.mappings();
  ASSERT_FALSE(all.empty());
  bool found = false;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0) {
      EXPECT_LE(all[i - 1].start, all[i].start);
    }
    found |= all[i].start == m.start && all[i].path == m.path;
  }
  EXPECT_TRUE(found);
}

TEST(Symbolizer, UnknownAddressesYieldNothing) {
  Symbolizer s;
  Mapping m;
  EXPECT_FALSE(s.find_mapping(16, &m));
  EXPECT_TRUE(s.symbolize(16).empty());
  // Executable anonymous memory (a JIT's) is a mapping without a file or symbols.
  void* code = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(code, MAP_FAILED);
  uint64_t jit = reinterpret_cast<uint64_t>(code);
  s.refresh();  // the miss on 16 above just refreshed; misses refresh at most every 50 ms
  ASSERT_TRUE(s.find_mapping(jit + 8, &m));
  EXPECT_EQ(m.path, "");
  EXPECT_TRUE(s.symbolize(jit + 8).empty());
  munmap(code, 4096);
}

TEST(Symbolizer, VdsoFunctionsResolveFromItsImageInMemory) {
  uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
  if (vdso == 0) GTEST_SKIP() << "no vDSO";
  Symbolizer s;
  Mapping m;
  ASSERT_TRUE(s.find_mapping(vdso, &m));
  EXPECT_EQ(m.path, "[vdso]");
  EXPECT_FALSE(m.build_id.empty());
  // A vDSO function's address from its own symbol table, checked against
  // the dynamic loader, which knows the vDSO as a loaded object.
  auto elf =
      ElfFile::from_memory({reinterpret_cast<const uint8_t*>(vdso), m.limit - m.start}, "[vdso]");
  ASSERT_NE(elf, nullptr);
  ASSERT_FALSE(elf->symbols().empty());
  const ElfSymbol& sym = elf->symbols().front();
  uint64_t runtime = vdso + (sym.address - elf->load_segments().front().vaddr);
  Frame f = frame_at(s, runtime + 1);
  EXPECT_EQ(f.function_start, runtime);
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(runtime + 1), &info) != 0 && info.dli_saddr != nullptr) {
    EXPECT_EQ(reinterpret_cast<uint64_t>(info.dli_saddr), runtime);
  }
  EXPECT_FALSE(f.function.empty());
}

// A shared library from the system that this test has not loaded yet, so
// that dlclose really unmaps it; and a function it exports.
struct Library {
  const char* soname;
  const char* function;
};

bool pick_unloaded_library(Library* out) {
  for (Library lib :
       {Library{"libzstd.so.1", "ZSTD_versionNumber"}, Library{"libbz2.so.1.0", "BZ2_bzlibVersion"},
        Library{"liblzma.so.5", "lzma_version_number"}, Library{"libz.so.1", "zlibVersion"}}) {
    if (is_mapped(lib.soname)) continue;
    void* handle = dlopen(lib.soname, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (handle != nullptr) {
      dlclose(handle);
      continue;
    }
    handle = dlopen(lib.soname, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) continue;
    dlclose(handle);
    *out = lib;
    return true;
  }
  return false;
}

class DlopenedLibrary : public ::testing::TestWithParam<bool> {};

// Param: whether the library is symbolized before dlclose, or only seen
// by a refresh (the Symbolizer must have kept what it needs either way).
TEST_P(DlopenedLibrary, StillResolvesAfterDlclose) {
  bool symbolize_before = GetParam();
  Library lib;
  if (!pick_unloaded_library(&lib)) GTEST_SKIP() << "no unloaded system library to dlopen";
  Symbolizer s;
  s.refresh();
  void* handle = dlopen(lib.soname, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr);
  uint64_t fn = reinterpret_cast<uint64_t>(dlsym(handle, lib.function));
  ASSERT_NE(fn, 0u);
  Mapping before;
  if (symbolize_before) {
    Frame f = frame_at(s, fn + 1);  // a miss: refreshes on its own
    EXPECT_EQ(f.function, lib.function);
    EXPECT_EQ(f.function_start, fn);
  } else {
    s.refresh();
  }
  ASSERT_TRUE(s.find_mapping(fn, &before));
  EXPECT_NE(before.path.find(lib.soname), std::string::npos) << before.path;

  ASSERT_EQ(dlclose(handle), 0);
  // Otherwise this test would not test the dlclose case at all.
  ASSERT_FALSE(is_mapped(lib.soname)) << lib.soname << " stayed mapped after dlclose";
  s.refresh();
  Frame after = frame_at(s, fn + 1);
  EXPECT_EQ(after.function, lib.function);
  EXPECT_EQ(after.function_start, fn);
  Mapping m;
  ASSERT_TRUE(s.find_mapping(fn, &m));
  EXPECT_EQ(m.path, before.path);
  EXPECT_EQ(m.build_id, before.build_id);
  EXPECT_FALSE(m.build_id.empty());
}

INSTANTIATE_TEST_SUITE_P(SymbolizedFirstOrNot, DlopenedLibrary, ::testing::Bool());

TEST(Symbolizer, ALibraryWhoseFileWasReplacedResolvesFromTheMappedFile) {
  Library lib;
  if (!pick_unloaded_library(&lib)) GTEST_SKIP() << "no unloaded system library to dlopen";
  void* probe = dlopen(lib.soname, RTLD_NOW | RTLD_LOCAL);
  Dl_info info;
  ASSERT_NE(dladdr(dlsym(probe, lib.function), &info), 0);
  std::string original = info.dli_fname;
  dlclose(probe);

  TempDir dir("cpprof_sym_");
  ASSERT_FALSE(dir.path().empty());
  std::string copy = dir.path() + "/libcopy.so";
  fs::copy_file(original, copy);
  void* handle = dlopen(copy.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr);
  uint64_t fn = reinterpret_cast<uint64_t>(dlsym(handle, lib.function));
  // Replace the file, as a package upgrade does: the path now names libc,
  // whose bytes at that offset are some other function.
  fs::remove(copy);
  uint64_t qsort_address = reinterpret_cast<uint64_t>(libc_function("qsort"));
  ASSERT_NE(dladdr(reinterpret_cast<void*>(qsort_address), &info), 0);
  fs::copy_file(info.dli_fname, copy);

  MapsEntry entry;
  ASSERT_TRUE(maps_entry_at(fn, &entry));
  ASSERT_TRUE(entry.deleted);
  char map_file[80];
  std::snprintf(map_file, sizeof(map_file), "/proc/self/map_files/%lx-%lx",
                static_cast<unsigned long>(entry.start), static_cast<unsigned long>(entry.limit));
  if (access(map_file, R_OK) != 0) {
    dlclose(handle);
    GTEST_SKIP() << "/proc/self/map_files not readable here";
  }
  Symbolizer s;
  Frame f = frame_at(s, fn + 1);
  EXPECT_EQ(f.function, lib.function);
  EXPECT_EQ(f.function_start, fn);
  Mapping m;
  ASSERT_TRUE(s.find_mapping(fn, &m));
  EXPECT_EQ(m.path, copy);
  dlclose(handle);
}

// A /proc/self/maps line placing the file of `real` at [start, limit).
std::string fake_maps_line(const MapsEntry& real, uint64_t start, uint64_t limit) {
  char line[PATH_MAX + 128];
  std::snprintf(line, sizeof(line), "%lx-%lx r-xp %08lx %02x:%02x %lu   %s\n",
                static_cast<unsigned long>(start), static_cast<unsigned long>(limit),
                static_cast<unsigned long>(real.offset), real.dev_major, real.dev_minor,
                static_cast<unsigned long>(real.inode), real.path.c_str());
  return line;
}

// Far from anything this process maps, so lookups never fall back to the real maps.
constexpr uint64_t kFakeBase = 0x100000000000;

TEST(Symbolizer, AddressesAreTranslatedThroughTheMappingNotAssumedIdentical) {
  uint64_t leaf = address_of(&cpprof_test::ns::leaf_function);
  MapsEntry real;
  ASSERT_TRUE(maps_entry_at(leaf, &real));
  Symbolizer s;
  s.refresh_from(fake_maps_line(real, kFakeBase, kFakeBase + (real.limit - real.start)));
  uint64_t moved = kFakeBase + (leaf - real.start);
  Frame f = frame_at(s, moved + 2);
  EXPECT_EQ(f.function, "cpprof_test::ns::leaf_function");
  EXPECT_EQ(f.function_start, moved);
}

TEST(Symbolizer, NewestMappingWinsWhereTheyOverlapAndOlderOnesAreKept) {
  uint64_t leaf = address_of(&cpprof_test::ns::leaf_function);
  uint64_t qsort_address = reinterpret_cast<uint64_t>(libc_function("qsort"));
  MapsEntry exe, libc;
  ASSERT_TRUE(maps_entry_at(leaf, &exe));
  ASSERT_TRUE(maps_entry_at(qsort_address, &libc));
  uint64_t size = std::max(exe.limit - exe.start, libc.limit - libc.start);
  Symbolizer s;
  // First libc's code occupies the range, then this binary's code is
  // "loaded" over its second half.
  s.refresh_from(fake_maps_line(libc, kFakeBase, kFakeBase + 2 * size));
  uint64_t qsort_moved = kFakeBase + (qsort_address - libc.start);
  EXPECT_EQ(frame_at(s, qsort_moved).function, "qsort");
  uint64_t second = kFakeBase + size;
  s.refresh_from(fake_maps_line(exe, second, second + size));

  Mapping m;
  ASSERT_TRUE(s.find_mapping(second + 1, &m));
  EXPECT_EQ(m.path, exe.path);
  EXPECT_EQ(frame_at(s, second + (leaf - exe.start)).function, "cpprof_test::ns::leaf_function");
  ASSERT_TRUE(s.find_mapping(kFakeBase + 1, &m));
  EXPECT_EQ(m.path, libc.path);
  EXPECT_EQ(frame_at(s, qsort_moved).function, "qsort");
  int fakes = 0;
  for (const Mapping& known : s.mappings())
    fakes += known.start >= kFakeBase && known.start < second + size;
  EXPECT_EQ(fakes, 2);
}

// Writes a copy of the ELF file at `from` to `to` in which every loaded
// address (segments, sections, symbols) is `shift` higher, so that ELF
// virtual addresses differ from file offsets, as in non-PIE executables.
// The build-id is altered so that no installed debug file matches the copy.
bool write_shifted_copy(const std::string& from, const std::string& to, uint64_t shift) {
  std::ifstream in(from, std::ios::binary | std::ios::ate);
  std::vector<char> b(in ? static_cast<size_t>(in.tellg()) : 0);
  in.seekg(0);
  in.read(b.data(), static_cast<std::streamsize>(b.size()));
  Elf64_Ehdr h;
  if (b.size() < sizeof(h)) return false;
  std::memcpy(&h, b.data(), sizeof(h));
  for (size_t i = 0; i < h.e_phnum; ++i) {
    auto* p = reinterpret_cast<Elf64_Phdr*>(b.data() + h.e_phoff + i * h.e_phentsize);
    if (p->p_type == PT_LOAD) p->p_vaddr += shift;
    if (p->p_type == PT_NOTE) b[p->p_offset + 16] ^= 0x5a;  // first byte of the first note's desc
  }
  for (size_t i = 0; i < h.e_shnum; ++i) {
    auto* sh = reinterpret_cast<Elf64_Shdr*>(b.data() + h.e_shoff + i * h.e_shentsize);
    if (sh->sh_flags & SHF_ALLOC) sh->sh_addr += shift;
    if (sh->sh_type != SHT_DYNSYM && sh->sh_type != SHT_SYMTAB) continue;
    for (uint64_t off = 0; off + sizeof(Elf64_Sym) <= sh->sh_size; off += sizeof(Elf64_Sym)) {
      auto* sym = reinterpret_cast<Elf64_Sym*>(b.data() + sh->sh_offset + off);
      if (sym->st_shndx != SHN_UNDEF && sym->st_value != 0) sym->st_value += shift;
    }
  }
  std::ofstream out(to, std::ios::binary);
  out.write(b.data(), static_cast<std::streamsize>(b.size()));
  return out.good();
}

TEST(Symbolizer, SegmentsWhoseAddressesDifferFromTheirFileOffsetsTranslateCorrectly) {
  uint64_t qsort_address = reinterpret_cast<uint64_t>(libc_function("qsort"));
  MapsEntry libc;
  ASSERT_TRUE(maps_entry_at(qsort_address, &libc));
  TempDir dir("cpprof_shift_");
  ASSERT_FALSE(dir.path().empty());
  std::string shifted = dir.path() + "/libshifted.so";
  constexpr uint64_t kShift = 0x10200000;
  ASSERT_TRUE(write_shifted_copy(libc.path, shifted, kShift));
  struct stat st;
  ASSERT_EQ(stat(shifted.c_str(), &st), 0);

  // The ELF level: file offsets now map to shifted addresses.
  uint64_t qsort_offset = qsort_address - libc.start + libc.offset;
  auto elf = ElfFile::open(shifted);
  ASSERT_NE(elf, nullptr);
  auto original = ElfFile::open(libc.path);
  ASSERT_NE(original, nullptr);
  ASSERT_NE(elf->build_id(), original->build_id());
  ASSERT_EQ(elf->vaddr_of_file_offset(qsort_offset),
            *original->vaddr_of_file_offset(qsort_offset) + kShift);
  const ElfSymbol* sym = elf->find_symbol(*elf->vaddr_of_file_offset(qsort_offset));
  ASSERT_NE(sym, nullptr);
  EXPECT_EQ(sym->name, "qsort");

  // The whole chain: runtime address -> file offset -> ELF address -> symbol -> runtime start.
  MapsEntry fake = libc;
  fake.path = shifted;
  fake.inode = static_cast<uint64_t>(st.st_ino);
  Symbolizer s;
  s.refresh_from(fake_maps_line(fake, kFakeBase, kFakeBase + (libc.limit - libc.start)));
  uint64_t moved = kFakeBase + (qsort_address - libc.start);
  Frame f = frame_at(s, moved + 3);
  EXPECT_EQ(f.function, "qsort");
  EXPECT_EQ(f.function_start, moved);
}

TEST(Symbolizer, ConcurrentCallersGetConsistentAnswers) {
  Symbolizer s;
  uint64_t leaf = address_of(&cpprof_test::ns::leaf_function);
  uint64_t qsort_address = reinterpret_cast<uint64_t>(libc_function("qsort"));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (frame_at(s, leaf + 1).function != "cpprof_test::ns::leaf_function") ++wrong;
        if (frame_at(s, qsort_address + 1).function != "qsort") ++wrong;
        if (t == 0 && i % 50 == 0) s.refresh();
        if (t == 1 && i % 50 == 0) s.mappings();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace cpprof::symbolize

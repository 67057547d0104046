#include "symbolize/elf_file.h"

#include <dlfcn.h>
#include <elf.h>
#include <gtest/gtest.h>
#include <link.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "symbolize/debug_file.h"
#include "symbolize/demangle.h"

namespace cpprof_test_elf {
[[gnu::noinline]] int marker_function(int x) { return x * 7 + 3; }
}  // namespace cpprof_test_elf

namespace cpprof::symbolize {
namespace {

namespace fs = std::filesystem;

// libc's own `name`: RTLD_DEFAULT could find a sanitizer's interceptor first.
void* libc_function(const char* name) {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  return libc != nullptr ? dlsym(libc, name) : nullptr;
}

std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  return out;
}

bool have_tool(const char* tool) {
  return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

// The build-id as `readelf -n` prints it: an independent reader.
std::string readelf_build_id(const std::string& path) {
  std::string out = run("readelf -n '" + path + "' 2>/dev/null");
  size_t at = out.find("Build ID: ");
  if (at == std::string::npos) return "";
  at += 10;
  return out.substr(at, out.find_first_of("\r\n", at) - at);
}

std::string exe_path() {
  char buffer[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
}

// The loader's load bias (runtime minus link-time address) of the object
// holding `address`, and that object's path.
bool loader_view(const void* address, uint64_t* bias, std::string* path) {
  Dl_info info;
  link_map* map = nullptr;
  if (dladdr1(address, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) == 0 ||
      map == nullptr) {
    return false;
  }
  *bias = map->l_addr;
  *path = map->l_name[0] != '\0' ? map->l_name : exe_path();
  return true;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::vector<uint8_t> bytes(in ? static_cast<size_t>(in.tellg()) : 0);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "cpprof_elf_XXXXXX").string();
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

ElfFile::Options no_debug_file() {
  ElfFile::Options options;
  options.use_debug_file = false;
  return options;
}

TEST(ElfFile, BuildIdOfThisBinaryMatchesReadelf) {
  if (!have_tool("readelf")) GTEST_SKIP() << "readelf not installed";
  auto elf = ElfFile::open(exe_path());
  ASSERT_NE(elf, nullptr);
  EXPECT_FALSE(elf->build_id().empty());
  EXPECT_EQ(elf->build_id(), readelf_build_id(exe_path()));
}

TEST(ElfFile, FindsAFunctionOfThisBinaryAtItsLinkTimeAddress) {
  uint64_t bias = 0;
  std::string path;
  auto* fn = reinterpret_cast<const void*>(&cpprof_test_elf::marker_function);
  ASSERT_TRUE(loader_view(fn, &bias, &path));
  auto elf = ElfFile::open(path);
  ASSERT_NE(elf, nullptr);
  uint64_t vaddr = reinterpret_cast<uint64_t>(fn) - bias;
  const ElfSymbol* sym = elf->find_symbol(vaddr + 2);
  ASSERT_NE(sym, nullptr);
  EXPECT_EQ(demangle(sym->name), "cpprof_test_elf::marker_function(int)");
  EXPECT_EQ(sym->address, vaddr);
  EXPECT_GT(sym->size, 2u);
  EXPECT_EQ(elf->symbols_path(), path);  // from its own .symtab
}

TEST(ElfFile, AFunctionCoversExactlyItsOwnBytes) {
  auto elf = ElfFile::open(exe_path());
  ASSERT_NE(elf, nullptr);
  const std::vector<ElfSymbol>& symbols = elf->symbols();
  ASSERT_GT(symbols.size(), 100u);
  EXPECT_EQ(elf->find_symbol(symbols.front().address - 1), nullptr);
  int checked_gaps = 0;
  for (size_t i = 0; i < symbols.size(); ++i) {
    const ElfSymbol& s = symbols[i];
    if (i > 0) {
      EXPECT_LT(symbols[i - 1].address, s.address);  // sorted, one per address
    }
    const ElfSymbol* last_byte = elf->find_symbol(s.address + s.size - 1);
    ASSERT_NE(last_byte, nullptr);
    EXPECT_LE(last_byte->address, s.address + s.size - 1);
    // Alignment padding after a function belongs to no function.
    bool gap = i + 1 < symbols.size() && symbols[i + 1].address > s.address + s.size;
    if (gap && elf->find_symbol(s.address + s.size) == nullptr) ++checked_gaps;
    if (gap) {
      EXPECT_NE(elf->find_symbol(s.address + s.size), &s) << s.name;
    }
  }
  EXPECT_GT(checked_gaps, 10);
}

TEST(ElfFile, FileOffsetsOfCodeTranslateToLinkTimeAddresses) {
  uint64_t bias = 0;
  std::string path;
  auto* fn = reinterpret_cast<const void*>(&cpprof_test_elf::marker_function);
  ASSERT_TRUE(loader_view(fn, &bias, &path));
  auto elf = ElfFile::open(path);
  ASSERT_NE(elf, nullptr);
  // The loader's own view: where the containing PT_LOAD begins in the file.
  uint64_t vaddr = reinterpret_cast<uint64_t>(fn) - bias;
  bool checked = false;
  for (const LoadSegment& seg : elf->load_segments()) {
    if (vaddr >= seg.vaddr && vaddr < seg.vaddr + seg.file_size) {
      uint64_t file_offset = seg.file_offset + (vaddr - seg.vaddr);
      EXPECT_TRUE(seg.executable);
      EXPECT_EQ(elf->vaddr_of_file_offset(file_offset), vaddr);
      checked = true;
    }
  }
  EXPECT_TRUE(checked);
  EXPECT_FALSE(elf->vaddr_of_file_offset(UINT64_MAX - 1).has_value());
}

TEST(ElfFile, LibcFunctionsResolveFromTheDynamicSymbolTable) {
  void* qsort_address = libc_function("qsort");
  ASSERT_NE(qsort_address, nullptr);
  uint64_t bias = 0;
  std::string path;
  ASSERT_TRUE(loader_view(qsort_address, &bias, &path));
  ASSERT_NE(path.find("libc.so"), std::string::npos) << path;
  auto elf = ElfFile::open(path, no_debug_file());
  ASSERT_NE(elf, nullptr);
  uint64_t vaddr = reinterpret_cast<uint64_t>(qsort_address) - bias;
  const ElfSymbol* sym = elf->find_symbol(vaddr + 1);
  ASSERT_NE(sym, nullptr);
  EXPECT_EQ(sym->name, "qsort");
  EXPECT_EQ(sym->address, vaddr);
  EXPECT_EQ(elf->symbols_path(), path);
  EXPECT_FALSE(elf->build_id().empty());
}

TEST(ElfFile, StrippedLibcUsesItsInstalledDebugFile) {
  void* qsort_address = libc_function("qsort");
  uint64_t bias = 0;
  std::string path;
  ASSERT_TRUE(loader_view(qsort_address, &bias, &path));
  auto elf = ElfFile::open(path);
  ASSERT_NE(elf, nullptr);
  std::string by_id = "/usr/lib/debug/.build-id/" + elf->build_id().substr(0, 2) + "/" +
                      elf->build_id().substr(2) + ".debug";
  if (!fs::exists(by_id)) GTEST_SKIP() << "no debug file for libc (libc6-dbg) installed";
  EXPECT_EQ(elf->symbols_path(), by_id);
  const ElfSymbol* sym = elf->find_symbol(reinterpret_cast<uint64_t>(qsort_address) - bias);
  ASSERT_NE(sym, nullptr);
  EXPECT_EQ(sym->address, reinterpret_cast<uint64_t>(qsort_address) - bias);
  // The full table knows internal functions the dynamic one does not.
  auto dynamic_only = ElfFile::open(path, no_debug_file());
  EXPECT_GT(elf->symbols().size(), dynamic_only->symbols().size());
}

class SeparateDebugFile : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_tool("objcopy")) GTEST_SKIP() << "objcopy not installed";
    ASSERT_TRUE(dir_.ok());
    auto* fn = reinterpret_cast<const void*>(&cpprof_test_elf::marker_function);
    std::string path;
    ASSERT_TRUE(loader_view(fn, &bias_, &path));
    vaddr_ = reinterpret_cast<uint64_t>(fn) - bias_;
    debug_ = dir_.file("copy.debug");
    ASSERT_EQ(std::system(("objcopy --only-keep-debug '" + path + "' '" + debug_ + "'").c_str()),
              0);
    original_ = path;
  }

  // A copy of this binary without symbols, optionally linked to `debug_`.
  std::string strip(bool with_debuglink) {
    std::string stripped = dir_.file("copy");
    std::string command = "objcopy --strip-all ";
    if (with_debuglink) command += "--add-gnu-debuglink='" + debug_ + "' ";
    command += "'" + original_ + "' '" + stripped + "'";
    EXPECT_EQ(std::system(command.c_str()), 0);
    return stripped;
  }

  ElfFile::Options root_in_temp() {
    ElfFile::Options options;
    options.debug_root = dir_.file("root");
    return options;
  }

  TempDir dir_;
  std::string original_, debug_;
  uint64_t bias_ = 0, vaddr_ = 0;
};

TEST_F(SeparateDebugFile, FoundThroughGnuDebuglink) {
  std::string stripped = strip(true);
  auto without = ElfFile::open(stripped, no_debug_file());
  ASSERT_NE(without, nullptr);
  EXPECT_EQ(without->find_symbol(vaddr_), nullptr);  // proves the symbols are gone

  auto elf = ElfFile::open(stripped, root_in_temp());
  ASSERT_NE(elf, nullptr);
  EXPECT_EQ(elf->symbols_path(), debug_);
  const ElfSymbol* sym = elf->find_symbol(vaddr_ + 1);
  ASSERT_NE(sym, nullptr);
  EXPECT_EQ(demangle(sym->name), "cpprof_test_elf::marker_function(int)");
}

TEST_F(SeparateDebugFile, FoundThroughBuildIdDirectory) {
  std::string stripped = strip(false);
  auto elf = ElfFile::open(stripped, root_in_temp());
  ASSERT_NE(elf, nullptr);
  ASSERT_GT(elf->build_id().size(), 2u);
  std::string dir = dir_.file("root/.build-id/" + elf->build_id().substr(0, 2));
  fs::create_directories(dir);
  std::string by_id = dir + "/" + elf->build_id().substr(2) + ".debug";
  fs::rename(debug_, by_id);
  EXPECT_EQ(elf->symbols_path(), by_id);
  const ElfSymbol* sym = elf->find_symbol(vaddr_);
  ASSERT_NE(sym, nullptr);
  EXPECT_EQ(demangle(sym->name), "cpprof_test_elf::marker_function(int)");
}

TEST_F(SeparateDebugFile, ADebugFileOfAnotherBuildIsIgnored) {
  std::string stripped = strip(true);
  auto elf = ElfFile::open(stripped, root_in_temp());
  ASSERT_NE(elf, nullptr);
  // Change one byte of the debug file's build-id note.
  std::vector<uint8_t> bytes = read_bytes(debug_);
  std::vector<uint8_t> id;
  for (size_t i = 0; i + 1 < elf->build_id().size(); i += 2) {
    id.push_back(static_cast<uint8_t>(std::stoi(elf->build_id().substr(i, 2), nullptr, 16)));
  }
  auto at = std::search(bytes.begin(), bytes.end(), id.begin(), id.end());
  ASSERT_NE(at, bytes.end());
  *at ^= 0xff;
  write_bytes(debug_, bytes);
  EXPECT_NE(elf->symbols_path(), debug_);
  EXPECT_EQ(elf->find_symbol(vaddr_), nullptr);
}

TEST(DebugFile, CandidatesFollowGdbOrder) {
  auto c = debug_file_candidates("/usr/lib/libx.so.1", "abcdef", "libx.so.1.debug", "/dbg");
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].path, "/dbg/.build-id/ab/cdef.debug");
  EXPECT_TRUE(c[0].by_build_id);
  EXPECT_EQ(c[1].path, "/usr/lib/libx.so.1.debug");
  EXPECT_EQ(c[2].path, "/usr/lib/.debug/libx.so.1.debug");
  EXPECT_EQ(c[3].path, "/dbg/usr/lib/libx.so.1.debug");
  EXPECT_FALSE(c[3].by_build_id);
}

TEST(DebugFile, DebuglinkNamesCannotEscapeTheSearchDirectories) {
  EXPECT_TRUE(debug_file_candidates("/usr/lib/libx.so", "", "../../etc/passwd", "/dbg").empty());
  EXPECT_TRUE(debug_file_candidates("/usr/lib/libx.so", "", "..", "/dbg").empty());
  EXPECT_TRUE(debug_file_candidates("/usr/lib/libx.so", "ab", "", "/dbg").empty());
}

TEST(DebugFile, Crc32MatchesTheStandardCheckValue) {
  const char* check = "123456789";
  EXPECT_EQ(debuglink_crc32({reinterpret_cast<const uint8_t*>(check), 9}), 0xcbf43926u);
  EXPECT_EQ(debuglink_crc32({}), 0u);
}

// --- Hostile input -------------------------------------------------------

std::string libc_path() {
  uint64_t bias;
  std::string path;
  loader_view(libc_function("qsort"), &bias, &path);
  return path;
}

TEST(ElfFile, RejectsTruncatedFiles) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  std::vector<uint8_t> whole = read_bytes(libc_path());
  ASSERT_GT(whole.size(), 4096u);
  // Section headers sit at the end of the file, so every prefix loses them.
  for (size_t size : {size_t{1}, size_t{4}, size_t{16}, size_t{63}, size_t{64}, size_t{200},
                      size_t{4096}, whole.size() / 2, whole.size() - 1}) {
    std::vector<uint8_t> prefix(whole.begin(), whole.begin() + static_cast<ptrdiff_t>(size));
    std::string path = dir.file("truncated");
    write_bytes(path, prefix);
    std::string error;
    EXPECT_EQ(ElfFile::open(path, no_debug_file(), &error), nullptr) << size;
    EXPECT_FALSE(error.empty());
  }
  write_bytes(dir.file("empty"), {});
  EXPECT_EQ(ElfFile::open(dir.file("empty")), nullptr);
  EXPECT_EQ(ElfFile::open(dir.file("missing")), nullptr);
  EXPECT_EQ(ElfFile::open(dir.file(".")), nullptr);  // a directory
}

// Applies `corrupt` to a copy of libc and opens the result from a file.
template <typename F>
std::unique_ptr<ElfFile> open_corrupted(const TempDir& dir, F corrupt) {
  std::vector<uint8_t> bytes = read_bytes(libc_path());
  Elf64_Ehdr ehdr;
  std::memcpy(&ehdr, bytes.data(), sizeof(ehdr));
  corrupt(bytes, ehdr);
  std::memcpy(bytes.data(), &ehdr, sizeof(ehdr));
  write_bytes(dir.file("corrupt"), bytes);
  return ElfFile::open(dir.file("corrupt"), no_debug_file());
}

// Section header `index` of `bytes`, for editing in place.
Elf64_Shdr* section(std::vector<uint8_t>& bytes, const Elf64_Ehdr& ehdr, size_t index) {
  return reinterpret_cast<Elf64_Shdr*>(bytes.data() + ehdr.e_shoff + index * ehdr.e_shentsize);
}

TEST(ElfFile, RejectsBrokenHeaders) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  EXPECT_NE(open_corrupted(dir, [](auto&, Elf64_Ehdr&) {}), nullptr);  // the control
  EXPECT_EQ(open_corrupted(dir, [](auto&, Elf64_Ehdr& h) { h.e_ident[EI_CLASS] = ELFCLASS32; }),
            nullptr);
  EXPECT_EQ(open_corrupted(dir, [](auto&, Elf64_Ehdr& h) { h.e_ident[EI_MAG1] = 'X'; }), nullptr);
  EXPECT_EQ(open_corrupted(dir, [](auto& b, Elf64_Ehdr& h) { h.e_phoff = b.size() - 8; }), nullptr);
  EXPECT_EQ(open_corrupted(dir, [](auto&, Elf64_Ehdr& h) { h.e_phoff = UINT64_MAX - 8; }), nullptr);
  EXPECT_EQ(open_corrupted(dir, [](auto&, Elf64_Ehdr& h) { h.e_phentsize = 1; }), nullptr);
  EXPECT_EQ(open_corrupted(dir, [](auto& b, Elf64_Ehdr& h) { h.e_shoff = b.size() - 8; }), nullptr);
  EXPECT_EQ(open_corrupted(dir, [](auto&, Elf64_Ehdr& h) { h.e_shnum = 0xfeff; }), nullptr);
  // Extended numbering: a count of 0 means "read it from section 0".
  EXPECT_EQ(open_corrupted(dir,
                           [](auto& b, Elf64_Ehdr& h) {
                             h.e_shnum = 0;
                             section(b, h, 0)->sh_size = UINT64_MAX / 2;
                           }),
            nullptr);
}

TEST(ElfFile, BrokenSectionsAndNotesYieldNothingInsteadOfCrashing) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  void* qsort_address = libc_function("qsort");
  uint64_t bias = 0;
  std::string path;
  ASSERT_TRUE(loader_view(qsort_address, &bias, &path));
  uint64_t vaddr = reinterpret_cast<uint64_t>(qsort_address) - bias;

  // Every section's data moved out of the file.
  auto elf = open_corrupted(dir, [](auto& b, Elf64_Ehdr& h) {
    for (size_t i = 0; i < h.e_shnum; ++i) section(b, h, i)->sh_offset = UINT64_MAX - 16;
  });
  ASSERT_NE(elf, nullptr);
  EXPECT_EQ(elf->find_symbol(vaddr), nullptr);
  EXPECT_TRUE(elf->symbols().empty());

  // Symbol tables pointing at a string table that does not exist, or with
  // entries of the wrong size.
  for (bool bad_link : {true, false}) {
    elf = open_corrupted(dir, [bad_link](auto& b, Elf64_Ehdr& h) {
      for (size_t i = 0; i < h.e_shnum; ++i) {
        Elf64_Shdr* s = section(b, h, i);
        if (s->sh_type == SHT_DYNSYM) {
          if (bad_link) {
            s->sh_link = 9999;
          } else {
            s->sh_entsize = 7;
          }
        }
      }
    });
    ASSERT_NE(elf, nullptr);
    EXPECT_EQ(elf->find_symbol(vaddr), nullptr);
  }

  // Name offsets past the end of the string table.
  elf = open_corrupted(dir, [](auto& b, Elf64_Ehdr& h) {
    for (size_t i = 0; i < h.e_shnum; ++i) {
      Elf64_Shdr* s = section(b, h, i);
      if (s->sh_type != SHT_DYNSYM) continue;
      for (uint64_t off = 0; off + sizeof(Elf64_Sym) <= s->sh_size; off += sizeof(Elf64_Sym)) {
        reinterpret_cast<Elf64_Sym*>(b.data() + s->sh_offset + off)->st_name = 0x7fffffff;
      }
    }
  });
  ASSERT_NE(elf, nullptr);
  EXPECT_TRUE(elf->symbols().empty());

  // Notes whose sizes overrun their segment.
  elf = open_corrupted(dir, [](auto& b, Elf64_Ehdr& h) {
    for (size_t i = 0; i < h.e_phnum; ++i) {
      auto* p = reinterpret_cast<Elf64_Phdr*>(b.data() + h.e_phoff + i * h.e_phentsize);
      if (p->p_type == PT_NOTE)
        reinterpret_cast<Elf64_Nhdr*>(b.data() + p->p_offset)->n_namesz = ~0u;
    }
    for (size_t i = 0; i < h.e_shnum; ++i) section(b, h, i)->sh_type = SHT_PROGBITS;
  });
  ASSERT_NE(elf, nullptr);
  EXPECT_TRUE(elf->build_id().empty());
}

TEST(ElfFile, SurvivesRandomCorruptionOfHeaders) {
  // The vDSO is a small, complete ELF image: every byte is near a header.
  uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
  if (vdso == 0) GTEST_SKIP() << "no vDSO";
  auto original = ElfFile::from_memory({reinterpret_cast<const uint8_t*>(vdso), 8192}, "[vdso]");
  ASSERT_NE(original, nullptr);
  ASSERT_FALSE(original->symbols().empty());
  std::vector<uint8_t> pristine(reinterpret_cast<const uint8_t*>(vdso),
                                reinterpret_cast<const uint8_t*>(vdso) + 8192);
  std::mt19937_64 random(12345);
  int opened = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<uint8_t> bytes = pristine;
    bytes.resize(random() % 2 ? bytes.size() : random() % bytes.size());
    int flips = 1 + static_cast<int>(random() % 8);
    for (int i = 0; i < flips && !bytes.empty(); ++i) {
      bytes[random() % bytes.size()] = static_cast<uint8_t>(random());
    }
    auto elf = ElfFile::from_memory(bytes, "mutant");
    if (!elf) continue;
    ++opened;
    for (const ElfSymbol& s : elf->symbols()) {
      ASSERT_NE(s.size, 0u);
      elf->find_symbol(s.address);
    }
    elf->vaddr_of_file_offset(random() % 8192);
  }
  EXPECT_GT(opened, 100);  // the mutations did reach the parsers beyond the header
}

}  // namespace
}  // namespace cpprof::symbolize

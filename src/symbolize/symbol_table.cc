#include "symbolize/symbol_table.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <tuple>

namespace cpprof::symbolize {
namespace {

struct Candidate {
  uint64_t address;
  uint64_t size;
  uint64_t section_end;  // 0 if unknown
  std::string_view name;
  int rank;  // lower is a better name for the address
};

int name_rank(unsigned char binding, std::string_view name) {
  int rank = binding == STB_GLOBAL ? 0 : binding == STB_WEAK ? 2 : 4;
  if (name.starts_with('_') && !name.starts_with("_Z")) rank += 1;  // __libc_x, _IO_x aliases
  return rank;
}

bool better(const Candidate& a, const Candidate& b) {
  return std::tie(a.address, a.rank, a.name) < std::tie(b.address, b.rank, b.name);
}

}  // namespace

SymbolTable SymbolTable::build(const ElfImage& image, const ElfSection& symtab) {
  SymbolTable table;
  const std::vector<ElfSection>& sections = image.sections();
  if (symtab.link >= sections.size()) return table;
  if (symtab.entsize != 0 && symtab.entsize != sizeof(Elf64_Sym)) return table;
  std::span<const uint8_t> data = image.section_data(symtab);
  std::span<const uint8_t> strings = image.section_data(sections[symtab.link]);
  if (data.empty() || strings.empty()) return table;
  const char* chars = reinterpret_cast<const char*>(strings.data());

  std::vector<Candidate> candidates;
  const size_t count = data.size() / sizeof(Elf64_Sym);
  for (size_t i = 0; i < count; ++i) {
    Elf64_Sym sym;
    std::memcpy(&sym, data.data() + i * sizeof(Elf64_Sym), sizeof(sym));
    unsigned char type = ELF64_ST_TYPE(sym.st_info);
    if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
        sym.st_value == 0 || sym.st_name == 0 || sym.st_name >= strings.size()) {
      continue;
    }
    const void* nul = std::memchr(chars + sym.st_name, 0, strings.size() - sym.st_name);
    if (nul == nullptr) continue;
    std::string_view name(chars + sym.st_name, static_cast<const char*>(nul));
    uint64_t section_end = 0;
    if (sym.st_shndx < sections.size() && sym.st_shndx < SHN_LORESERVE) {
      const ElfSection& section = sections[sym.st_shndx];
      if (section.addr <= sym.st_value && sym.st_value - section.addr < section.size) {
        section_end = section.addr + section.size;
      }
    }
    uint64_t size = sym.st_size;
    if (size > UINT64_MAX - sym.st_value) size = UINT64_MAX - sym.st_value;
    candidates.push_back(
        {sym.st_value, size, section_end, name, name_rank(ELF64_ST_BIND(sym.st_info), name)});
  }
  std::sort(candidates.begin(), candidates.end(), better);

  // One entry per address: the best-ranked name, the largest size of its aliases.
  std::vector<Candidate> unique;
  for (const Candidate& c : candidates) {
    if (!unique.empty() && unique.back().address == c.address) {
      unique.back().size = std::max(unique.back().size, c.size);
      if (unique.back().section_end == 0) unique.back().section_end = c.section_end;
      continue;
    }
    unique.push_back(c);
  }

  table.symbols_.reserve(unique.size());
  for (size_t i = 0; i < unique.size(); ++i) {
    const Candidate& c = unique[i];
    uint64_t size = c.size;
    if (size == 0) {
      // No size recorded: assume the code runs up to whatever comes next.
      uint64_t end = i + 1 < unique.size() ? unique[i + 1].address : UINT64_MAX;
      if (c.section_end != 0) end = std::min(end, c.section_end);
      size = end == UINT64_MAX ? 1 : end - c.address;
    }
    table.symbols_.push_back({c.address, size, c.name});
  }
  return table;
}

const ElfSymbol* SymbolTable::lookup(uint64_t vaddr) const {
  auto it = std::upper_bound(symbols_.begin(), symbols_.end(), vaddr,
                             [](uint64_t a, const ElfSymbol& s) { return a < s.address; });
  // Usually the nearest symbol below holds the address; look a few further
  // back for functions that enclose others (assembly with inner entry points).
  constexpr int kMaxEnclosingScan = 8;
  for (int n = 0; n < kMaxEnclosingScan && it != symbols_.begin(); ++n) {
    --it;
    if (vaddr - it->address < it->size) return &*it;
  }
  return nullptr;
}

}  // namespace cpprof::symbolize

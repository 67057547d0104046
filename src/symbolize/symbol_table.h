// The function symbols of one ELF symbol table, sorted for binary search.
//
// Built once per object, then read-only. Names point into the ELF image the
// table was built from, which must outlive the table. Not for signal
// handlers: building allocates.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "symbolize/elf_image.h"

namespace cpprof::symbolize {

// A function: ELF virtual addresses [address, address + size).
struct ElfSymbol {
  uint64_t address = 0;
  uint64_t size = 0;      // never 0 here; see SymbolTable::build
  std::string_view name;  // linkage (mangled) name
};

class SymbolTable {
 public:
  SymbolTable() = default;

  // Collects STT_FUNC and STT_GNU_IFUNC symbols of `symtab` (a SHT_SYMTAB or
  // SHT_DYNSYM section of `image`). Of several names at one address the
  // global, un-underscored one wins (so "malloc", not "__libc_malloc"). A
  // symbol of size 0 (hand-written assembly) is taken to reach the next
  // symbol or the end of its section. Entries out of bounds are skipped.
  static SymbolTable build(const ElfImage& image, const ElfSection& symtab);

  // The function containing `vaddr`, or nullptr.
  const ElfSymbol* lookup(uint64_t vaddr) const;

  // Every function, ordered by address, one per address.
  const std::vector<ElfSymbol>& symbols() const { return symbols_; }

  bool empty() const { return symbols_.empty(); }

 private:
  std::vector<ElfSymbol> symbols_;
};

}  // namespace cpprof::symbolize

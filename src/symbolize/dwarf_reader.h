// One object's DWARF, read through libdw: the function, file and line at an
// address, with the chain of inlined calls that led there.
//
// Addresses are ELF virtual addresses (what DWARF records), not runtime
// ones. The compilation unit holding an address is found through
// .debug_aranges, or, where that misses (clang writes none), through the
// units' own address ranges, indexed at the first miss. Each unit's
// out-of-line functions are indexed by address at the first lookup in it;
// from the function, the nested scopes holding the address lead to the
// inlined calls. Costs: memory for those indexes and libdw's own caches
// (line tables, and the decompressed debug sections, which libdw unpacks
// when the file is opened).
//
// Functions are named by their linkage name where DWARF has one; where not
// (functions in an anonymous namespace, C code, clang -gmlt), by DW_AT_name,
// qualified with the namespaces and classes around its entry.
//
// Split DWARF (.dwo) is not followed: such units give file and line only.
// Hostile or broken DWARF yields fewer frames, not a crash, as far as libdw
// checks what it reads.
//
// Not thread-safe; the Symbolizer serializes. Not for signal handlers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "symbolize/dw_library.h"

namespace cpprof::symbolize {

// One source-level frame, as DWARF tells it (names not demangled).
struct DwarfFrame {
  std::string linkage_name;  // mangled name; empty if DWARF has none (C code, clang -gmlt)
  // The source name, for C++ qualified with its namespaces and classes
  // ("ns::Class::f"); empty if the unit names no function here.
  std::string name;
  std::string file;       // full path (the compilation directory joined if relative)
  int64_t line = 0;       // 0 if unknown
  int64_t decl_line = 0;  // where the function is declared; 0 if unknown
};

class DwarfReader {
 public:
  // Reads the DWARF of the ELF file open as `fd`. nullptr if it holds none
  // that libdw can read. The descriptor stays the caller's and may be closed
  // as soon as this returns. `lib` must outlive the reader.
  static std::unique_ptr<DwarfReader> open(const DwLibrary& lib, int fd);

  ~DwarfReader();
  DwarfReader(const DwarfReader&) = delete;
  DwarfReader& operator=(const DwarfReader&) = delete;

  // The frames at ELF virtual address `vaddr`, innermost first: for code
  // inlined into other code, the inlined function at the address's line,
  // then each function it was inlined into at the line of that call, ending
  // with the out-of-line function. False if no compilation unit holds the
  // address, or the one that does knows neither function nor line there. A
  // unit with a line but no function entry (assembly) gives one frame
  // without names.
  bool frames_at(uint64_t vaddr, std::vector<DwarfFrame>* out);

 private:
  // A piece of code [begin, end) and the entry that describes it.
  struct Range {
    uint64_t begin = 0;
    uint64_t end = 0;
    Dwarf_Die die{};
  };
  struct Unit {
    Dwarf_Die die{};
    std::vector<Range> functions;  // out-of-line functions, by begin
    std::string comp_dir;
    Dwarf_Files* files = nullptr;  // for call sites; read when first needed
    bool files_read = false;
  };

  DwarfReader(const DwLibrary& lib, Elf* elf, Dwarf* dwarf);

  Unit* unit_at(uint64_t vaddr);
  Unit* unit_for(const Dwarf_Die& cu_die);
  void index_units();
  void index_functions(Dwarf_Die* scope, int depth, std::vector<Range>* out);
  void add_ranges(Dwarf_Die* die, std::vector<Range>* out);
  const Range* function_at(const Unit& unit, uint64_t vaddr) const;
  bool scope_holding(Dwarf_Die* scope, uint64_t vaddr, int depth, Dwarf_Die* out);
  void describe(Dwarf_Die* function, DwarfFrame* frame);
  const std::string& qualified_name(Dwarf_Die* function);
  bool enclosing_names(Dwarf_Die* unit_die, Dwarf_Off target, std::string* prefix);
  void call_site(Unit& unit, Dwarf_Die* inlined, DwarfFrame* frame);
  std::string full_path(const Unit& unit, const char* file) const;

  const DwLibrary& lib_;
  Elf* elf_;
  Dwarf* dwarf_;
  bool units_indexed_ = false;
  std::vector<Range> unit_ranges_;               // by begin; only once .debug_aranges missed
  std::unordered_map<const void*, Unit> units_;  // by the unit DIE's address
  // Names of functions without a linkage name, by the address of their DIE.
  std::unordered_map<const void*, std::string> qualified_names_;
};

}  // namespace cpprof::symbolize

#include "symbolize/dwarf_reader.h"

#include <dwarf.h>

#include <algorithm>

namespace cpprof::symbolize {
namespace {

// How deep we follow nested namespaces, blocks and inlined calls: real code
// stays far below; broken DWARF must not recurse without end.
constexpr int kMaxDepth = 64;

}  // namespace

std::unique_ptr<DwarfReader> DwarfReader::open(const DwLibrary& lib, int fd) {
  // ELF_C_READ_MMAP: libelf maps the file read-only itself, and keeps its
  // own copy of the section headers that decompressing a section rewrites
  // (elfutils 0.165 and later; we need 0.170 for dwarf_get_units anyway).
  Elf* elf = lib.elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (elf == nullptr) return nullptr;
  // libdw notes the file's directory from the descriptor (for dwz and .dwo
  // files named relative to it), so the descriptor is still open here.
  Dwarf* dwarf = lib.dwarf_begin_elf(elf, DWARF_C_READ, nullptr);
  // From now on libelf works from its mapping (or, if mapping failed, from
  // a copy it reads now) and never touches the descriptor again.
  if (dwarf == nullptr || lib.elf_cntl(elf, ELF_C_FDREAD) != 0) {
    if (dwarf != nullptr) lib.dwarf_end(dwarf);
    lib.elf_end(elf);
    return nullptr;
  }
  return std::unique_ptr<DwarfReader>(new DwarfReader(lib, elf, dwarf));
}

DwarfReader::DwarfReader(const DwLibrary& lib, Elf* elf, Dwarf* dwarf)
    : lib_(lib), elf_(elf), dwarf_(dwarf) {}

DwarfReader::~DwarfReader() {
  // dwarf_end leaves an Elf it did not open to its owner.
  lib_.dwarf_end(dwarf_);
  lib_.elf_end(elf_);
}

bool DwarfReader::frames_at(uint64_t vaddr, std::vector<DwarfFrame>* out) {
  out->clear();
  Unit* unit = unit_at(vaddr);
  if (unit == nullptr) return false;

  // The scopes from the out-of-line function down to the innermost inlined
  // call holding the address.
  std::vector<Dwarf_Die> chain;
  if (const Range* function = function_at(*unit, vaddr)) {
    chain.push_back(function->die);
    Dwarf_Die scope = function->die;
    for (int depth = 0; depth < kMaxDepth; ++depth) {
      Dwarf_Die inner;
      if (!scope_holding(&scope, vaddr, 0, &inner)) break;
      if (lib_.dwarf_tag(&inner) == DW_TAG_inlined_subroutine) chain.push_back(inner);
      scope = inner;
    }
  }

  // The line table knows where the innermost code came from.
  DwarfFrame innermost;
  if (Dwarf_Line* row = lib_.dwarf_getsrc_die(&unit->die, vaddr)) {
    if (const char* file = lib_.dwarf_linesrc(row, nullptr, nullptr)) {
      innermost.file = full_path(*unit, file);
    }
    int line = 0;
    if (lib_.dwarf_lineno(row, &line) == 0 && line > 0) innermost.line = line;
  }
  if (chain.empty()) {
    if (innermost.file.empty() && innermost.line == 0) return false;
    out->push_back(std::move(innermost));
    return true;
  }

  out->reserve(chain.size());
  for (size_t i = chain.size(); i-- > 0;) {
    DwarfFrame frame;
    if (i + 1 == chain.size()) {
      frame = innermost;
    } else {
      // Where the next inner function was inlined: a line of this one.
      call_site(*unit, &chain[i + 1], &frame);
    }
    describe(&chain[i], &frame);
    out->push_back(std::move(frame));
  }
  return true;
}

DwarfReader::Unit* DwarfReader::unit_at(uint64_t vaddr) {
  Dwarf_Die cu_die;
  if (lib_.dwarf_addrdie(dwarf_, vaddr, &cu_die) != nullptr) return unit_for(cu_die);
  // No .debug_aranges, or one that leaves this unit out.
  if (!units_indexed_) index_units();
  auto it = std::upper_bound(unit_ranges_.begin(), unit_ranges_.end(), vaddr,
                             [](uint64_t a, const Range& r) { return a < r.begin; });
  if (it == unit_ranges_.begin() || vaddr >= std::prev(it)->end) return nullptr;
  return unit_for(std::prev(it)->die);
}

void DwarfReader::index_units() {
  units_indexed_ = true;
  Dwarf_CU* cu = nullptr;
  Dwarf_CU* next = nullptr;
  Dwarf_Half version = 0;
  uint8_t unit_type = 0;
  Dwarf_Die cu_die;
  Dwarf_Die sub_die;
  while (lib_.dwarf_get_units(dwarf_, cu, &next, &version, &unit_type, &cu_die, &sub_die) == 0) {
    cu = next;
    // Type and partial units describe no code of their own.
    if (unit_type == DW_UT_compile || unit_type == DW_UT_skeleton)
      add_ranges(&cu_die, &unit_ranges_);
  }
  std::sort(unit_ranges_.begin(), unit_ranges_.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
}

DwarfReader::Unit* DwarfReader::unit_for(const Dwarf_Die& cu_die) {
  auto [it, inserted] = units_.try_emplace(cu_die.addr);
  Unit& unit = it->second;
  if (!inserted) return &unit;
  unit.die = cu_die;
  index_functions(&unit.die, 0, &unit.functions);
  std::sort(unit.functions.begin(), unit.functions.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  Dwarf_Attribute attr;
  if (lib_.dwarf_attr(&unit.die, DW_AT_comp_dir, &attr) != nullptr) {
    if (const char* dir = lib_.dwarf_formstring(&attr)) unit.comp_dir = dir;
  }
  return &unit;
}

void DwarfReader::index_functions(Dwarf_Die* scope, int depth, std::vector<Range>* out) {
  Dwarf_Die child;
  if (lib_.dwarf_child(scope, &child) != 0) return;
  do {
    switch (lib_.dwarf_tag(&child)) {
      case DW_TAG_subprogram:
        add_ranges(&child, out);  // declarations have none
        break;
      // GCC writes definitions at the top level; other compilers nest them
      // in the namespace or class they belong to.
      case DW_TAG_namespace:
      case DW_TAG_class_type:
      case DW_TAG_structure_type:
      case DW_TAG_union_type:
      case DW_TAG_interface_type:
      case DW_TAG_module:
        if (depth < kMaxDepth) index_functions(&child, depth + 1, out);
        break;
      default:
        break;
    }
  } while (lib_.dwarf_siblingof(&child, &child) == 0);
}

void DwarfReader::add_ranges(Dwarf_Die* die, std::vector<Range>* out) {
  Dwarf_Addr base = 0;
  Dwarf_Addr begin = 0;
  Dwarf_Addr end = 0;
  ptrdiff_t offset = 0;
  while ((offset = lib_.dwarf_ranges(die, offset, &base, &begin, &end)) > 0) {
    if (begin < end) out->push_back({begin, end, *die});
  }
}

const DwarfReader::Range* DwarfReader::function_at(const Unit& unit, uint64_t vaddr) const {
  auto it = std::upper_bound(unit.functions.begin(), unit.functions.end(), vaddr,
                             [](uint64_t a, const Range& r) { return a < r.begin; });
  // Functions do not overlap in sane DWARF; look at a few earlier ones in
  // case a bogus entry covers a real one's start.
  for (int i = 0; i < 4 && it != unit.functions.begin(); ++i) {
    --it;
    if (vaddr < it->end) return &*it;
  }
  return nullptr;
}

bool DwarfReader::scope_holding(Dwarf_Die* scope, uint64_t vaddr, int depth, Dwarf_Die* out) {
  Dwarf_Die child;
  if (lib_.dwarf_child(scope, &child) != 0) return false;
  do {
    int tag = lib_.dwarf_tag(&child);
    if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_lexical_block &&
        tag != DW_TAG_try_block && tag != DW_TAG_catch_block && tag != DW_TAG_with_stmt) {
      continue;
    }
    if (lib_.dwarf_haspc(&child, vaddr) > 0) {
      *out = child;
      return true;
    }
    // A block without addresses of its own may still hold inlined calls
    // that have them: look through it.
    Dwarf_Addr base = 0;
    Dwarf_Addr begin = 0;
    Dwarf_Addr end = 0;
    if (tag == DW_TAG_lexical_block && depth < kMaxDepth &&
        lib_.dwarf_ranges(&child, 0, &base, &begin, &end) == 0 &&
        scope_holding(&child, vaddr, depth + 1, out)) {
      return true;
    }
  } while (lib_.dwarf_siblingof(&child, &child) == 0);
  return false;
}

void DwarfReader::describe(Dwarf_Die* function, DwarfFrame* frame) {
  // The *_integrate lookups follow DW_AT_abstract_origin (an inlined or
  // cloned copy) and DW_AT_specification (a member defined outside its
  // class) to the entry that carries the names.
  Dwarf_Attribute attr;
  for (unsigned int name : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name}) {
    if (lib_.dwarf_attr_integrate(function, name, &attr) == nullptr) continue;
    if (const char* linkage = lib_.dwarf_formstring(&attr)) {
      frame->linkage_name = linkage;
      break;
    }
  }
  // A C++ linkage name says it all; anything else (C, an assembler alias)
  // needs the source name.
  if (!frame->linkage_name.starts_with("_Z")) frame->name = qualified_name(function);
  int decl_line = 0;
  if (lib_.dwarf_decl_line(function, &decl_line) == 0 && decl_line > 0) {
    frame->decl_line = decl_line;
  }
}

const std::string& DwarfReader::qualified_name(Dwarf_Die* function) {
  // The entry that carries DW_AT_name: its place in the tree tells the
  // namespaces and classes.
  Dwarf_Die named = *function;
  for (int i = 0; i < kMaxDepth && lib_.dwarf_hasattr(&named, DW_AT_name) == 0; ++i) {
    Dwarf_Attribute attr;
    if ((lib_.dwarf_attr(&named, DW_AT_abstract_origin, &attr) == nullptr &&
         lib_.dwarf_attr(&named, DW_AT_specification, &attr) == nullptr) ||
        lib_.dwarf_formref_die(&attr, &named) == nullptr) {
      break;
    }
  }
  auto [it, inserted] = qualified_names_.try_emplace(named.addr);
  if (!inserted) return it->second;
  const char* name = lib_.dwarf_diename(&named);
  if (name == nullptr) return it->second;
  std::string prefix;
  Dwarf_Die unit_die;
  if (lib_.dwarf_diecu(&named, &unit_die, nullptr, nullptr) != nullptr &&
      enclosing_names(&unit_die, lib_.dwarf_dieoffset(&named), &prefix)) {
    it->second = prefix + name;
  } else {
    it->second = name;
  }
  return it->second;
}

bool DwarfReader::enclosing_names(Dwarf_Die* unit_die, Dwarf_Off target, std::string* prefix) {
  // Entries are stored depth first, so the child whose offset range holds
  // the target is its ancestor; siblings are skipped without reading their
  // children (compilers link them with DW_AT_sibling).
  Dwarf_Die scope = *unit_die;
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    Dwarf_Die child;
    if (lib_.dwarf_child(&scope, &child) != 0) return false;
    while (true) {
      const Dwarf_Off offset = lib_.dwarf_dieoffset(&child);
      if (offset == target) return true;
      Dwarf_Die next;
      const bool has_next = lib_.dwarf_siblingof(&child, &next) == 0;
      if (offset < target && (!has_next || target < lib_.dwarf_dieoffset(&next))) break;
      if (!has_next || offset > target) return false;
      child = next;
    }
    switch (lib_.dwarf_tag(&child)) {
      case DW_TAG_namespace: {
        const char* name = lib_.dwarf_diename(&child);
        *prefix += name != nullptr ? name : "(anonymous namespace)";
        *prefix += "::";
        break;
      }
      case DW_TAG_class_type:
      case DW_TAG_structure_type:
      case DW_TAG_union_type:
      case DW_TAG_interface_type:
      case DW_TAG_module:
        if (const char* name = lib_.dwarf_diename(&child)) {
          *prefix += name;
          *prefix += "::";
        }
        break;
      default:  // e.g. the function around a local class: not part of the name here
        break;
    }
    scope = child;
  }
  return false;
}

void DwarfReader::call_site(Unit& unit, Dwarf_Die* inlined, DwarfFrame* frame) {
  Dwarf_Attribute attr;
  Dwarf_Word value = 0;
  if (lib_.dwarf_attr(inlined, DW_AT_call_line, &attr) != nullptr &&
      lib_.dwarf_formudata(&attr, &value) == 0) {
    frame->line = static_cast<int64_t>(value);
  }
  if (lib_.dwarf_attr(inlined, DW_AT_call_file, &attr) == nullptr ||
      lib_.dwarf_formudata(&attr, &value) != 0) {
    return;
  }
  if (!unit.files_read) {
    unit.files_read = true;
    size_t count = 0;
    if (lib_.dwarf_getsrcfiles(&unit.die, &unit.files, &count) != 0) unit.files = nullptr;
  }
  if (unit.files == nullptr) return;
  if (const char* file = lib_.dwarf_filesrc(unit.files, value, nullptr, nullptr)) {
    frame->file = full_path(unit, file);
  }
}

std::string DwarfReader::full_path(const Unit& unit, const char* file) const {
  std::string path(file);
  if (path.empty() || path.front() == '/' || unit.comp_dir.empty()) return path;
  std::string dir = unit.comp_dir;
  if (dir.back() != '/') dir.push_back('/');
  // libdw already put the compilation directory before files of directory
  // 0; a relative one (-fdebug-prefix-map=...=.) thus still shows.
  if (path.starts_with(dir)) return path;
  return dir + path;
}

}  // namespace cpprof::symbolize

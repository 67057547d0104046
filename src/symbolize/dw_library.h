// elfutils' libdw (and the libelf it depends on), loaded at run time.
//
// Nothing links against libdw: most hosts never ask for a profile, and code
// without debug information has no use for it, so libcpprof.so must load
// without it. The first symbolization that finds DWARF dlopen()s
// "libdw.so.1" and looks up each function below. The prototypes come from
// libdw-dev's headers (decltype), so a changed signature fails to compile
// instead of crashing a host.
//
// Only libdw proper is used, never libdwfl, and so never debuginfod: libdw
// reads the descriptors we hand it, plus, on its own, a dwz supplementary
// file by build-id under /usr/lib/debug. It opens no socket, whatever
// DEBUGINFOD_URLS says.
//
// Thread-safe: the process-wide table is loaded once and never changes.
// (The functions themselves must not be called concurrently on one Dwarf
// handle; DwarfReader's user serializes.) Not for signal handlers.
#pragma once

#include <elfutils/libdw.h>
#include <libelf.h>

#include <memory>

namespace cpprof::symbolize {

// Pointers to the functions we call, resolved by dlsym.
struct DwLibrary {
  decltype(&::elf_version) elf_version = nullptr;
  decltype(&::elf_begin) elf_begin = nullptr;
  decltype(&::elf_cntl) elf_cntl = nullptr;
  decltype(&::elf_end) elf_end = nullptr;
  decltype(&::dwarf_begin_elf) dwarf_begin_elf = nullptr;
  decltype(&::dwarf_end) dwarf_end = nullptr;
  decltype(&::dwarf_addrdie) dwarf_addrdie = nullptr;
  decltype(&::dwarf_get_units) dwarf_get_units = nullptr;
  decltype(&::dwarf_ranges) dwarf_ranges = nullptr;
  decltype(&::dwarf_haspc) dwarf_haspc = nullptr;
  decltype(&::dwarf_child) dwarf_child = nullptr;
  decltype(&::dwarf_siblingof) dwarf_siblingof = nullptr;
  decltype(&::dwarf_tag) dwarf_tag = nullptr;
  decltype(&::dwarf_dieoffset) dwarf_dieoffset = nullptr;
  decltype(&::dwarf_diecu) dwarf_diecu = nullptr;
  decltype(&::dwarf_hasattr) dwarf_hasattr = nullptr;
  decltype(&::dwarf_formref_die) dwarf_formref_die = nullptr;
  decltype(&::dwarf_attr) dwarf_attr = nullptr;
  decltype(&::dwarf_attr_integrate) dwarf_attr_integrate = nullptr;
  decltype(&::dwarf_formstring) dwarf_formstring = nullptr;
  decltype(&::dwarf_formudata) dwarf_formudata = nullptr;
  decltype(&::dwarf_diename) dwarf_diename = nullptr;
  decltype(&::dwarf_decl_line) dwarf_decl_line = nullptr;
  decltype(&::dwarf_getsrc_die) dwarf_getsrc_die = nullptr;
  decltype(&::dwarf_linesrc) dwarf_linesrc = nullptr;
  decltype(&::dwarf_lineno) dwarf_lineno = nullptr;
  decltype(&::dwarf_getsrcfiles) dwarf_getsrcfiles = nullptr;
  decltype(&::dwarf_filesrc) dwarf_filesrc = nullptr;
};

// The process-wide table, loaded at the first call. nullptr (and no log
// line) if libdw.so.1 is not installed or lacks a function we need; callers
// then make do with ELF symbols. Never unloaded.
const DwLibrary* dw_library();

// Loads the library named `soname` afresh, as dw_library() does once; for
// tests (a name that does not exist gives nullptr). The handle is never
// closed: the table must stay valid as long as anything uses it.
std::unique_ptr<DwLibrary> load_dw_library(const char* soname);

}  // namespace cpprof::symbolize

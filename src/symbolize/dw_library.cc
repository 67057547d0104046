#include "symbolize/dw_library.h"

#include <dlfcn.h>

namespace cpprof::symbolize {
namespace {

// Looks `name` up in `handle` (libdw and, through its dependencies, libelf).
template <typename F>
bool resolve(void* handle, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(handle, name));
  return *out != nullptr;
}

bool resolve_all(void* handle, DwLibrary* lib) {
  return resolve(handle, "elf_version", &lib->elf_version) &&
         resolve(handle, "elf_begin", &lib->elf_begin) &&
         resolve(handle, "elf_cntl", &lib->elf_cntl) && resolve(handle, "elf_end", &lib->elf_end) &&
         resolve(handle, "dwarf_begin_elf", &lib->dwarf_begin_elf) &&
         resolve(handle, "dwarf_end", &lib->dwarf_end) &&
         resolve(handle, "dwarf_addrdie", &lib->dwarf_addrdie) &&
         resolve(handle, "dwarf_get_units", &lib->dwarf_get_units) &&
         resolve(handle, "dwarf_ranges", &lib->dwarf_ranges) &&
         resolve(handle, "dwarf_haspc", &lib->dwarf_haspc) &&
         resolve(handle, "dwarf_child", &lib->dwarf_child) &&
         resolve(handle, "dwarf_siblingof", &lib->dwarf_siblingof) &&
         resolve(handle, "dwarf_tag", &lib->dwarf_tag) &&
         resolve(handle, "dwarf_dieoffset", &lib->dwarf_dieoffset) &&
         resolve(handle, "dwarf_diecu", &lib->dwarf_diecu) &&
         resolve(handle, "dwarf_hasattr", &lib->dwarf_hasattr) &&
         resolve(handle, "dwarf_formref_die", &lib->dwarf_formref_die) &&
         resolve(handle, "dwarf_attr", &lib->dwarf_attr) &&
         resolve(handle, "dwarf_attr_integrate", &lib->dwarf_attr_integrate) &&
         resolve(handle, "dwarf_formstring", &lib->dwarf_formstring) &&
         resolve(handle, "dwarf_formudata", &lib->dwarf_formudata) &&
         resolve(handle, "dwarf_diename", &lib->dwarf_diename) &&
         resolve(handle, "dwarf_decl_line", &lib->dwarf_decl_line) &&
         resolve(handle, "dwarf_getsrc_die", &lib->dwarf_getsrc_die) &&
         resolve(handle, "dwarf_linesrc", &lib->dwarf_linesrc) &&
         resolve(handle, "dwarf_lineno", &lib->dwarf_lineno) &&
         resolve(handle, "dwarf_getsrcfiles", &lib->dwarf_getsrcfiles) &&
         resolve(handle, "dwarf_filesrc", &lib->dwarf_filesrc);
}

}  // namespace

std::unique_ptr<DwLibrary> load_dw_library(const char* soname) {
  // RTLD_LOCAL: the host's own lookups must never bind to what we loaded.
  void* handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return nullptr;
  auto lib = std::make_unique<DwLibrary>();
  // libelf refuses every descriptor until told which ELF version we speak.
  if (!resolve_all(handle, lib.get()) || lib->elf_version(EV_CURRENT) == EV_NONE) {
    dlclose(handle);  // nothing of it is in use yet
    return nullptr;
  }
  return lib;
}

const DwLibrary* dw_library() {
  // Initialized once, thread-safely; a missing library is not retried. Never
  // freed: a symbolizing thread may outlive static destructors.
  static const DwLibrary* const lib = load_dw_library("libdw.so.1").release();
  return lib;
}

}  // namespace cpprof::symbolize

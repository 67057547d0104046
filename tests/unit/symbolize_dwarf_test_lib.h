// The interface of the small shared library that the DWARF tests dlopen()
// (tests/unit/symbolize_dwarf_test_lib.cc, built several ways by
// tests/CMakeLists.txt). C linkage, so that dlsym finds it by a plain name.
#pragma once

#include <cstdint>

// What one call of symbolize_dwarf_lib_probe() observed: addresses inside
// the library's code, and the source lines they belong to.
struct DwarfLibProbe {
  // Inside an always_inline function inlined into a noinline one: the call
  // instruction on `inlined_line`, which the caller reached from `call_line`.
  uint64_t inlined_address = 0;
  int inlined_line = 0;
  int call_line = 0;
  // Inside a function that was not inlined: a call on `plain_line`.
  uint64_t plain_address = 0;
  int plain_line = 0;
  const char* file = nullptr;  // __FILE__ of the library's source
};

// Fills `probe`. Exported from every build of the library.
extern "C" void symbolize_dwarf_lib_probe(DwarfLibProbe* probe);

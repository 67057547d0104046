// A shared library for the DWARF tests, with one inlined call and one plain
// one, each recording the address of its call instruction and its line.
#include "symbolize_dwarf_test_lib.h"

namespace dwarf_test_lib {

volatile int g_sink = 0;

// Records the address of the call instruction that called it (return
// address minus 1, as profiles hold callers) and the line it came from.
[[gnu::noinline]] void note_call(uint64_t* address, int* line, int at_line) {
  *address =
      reinterpret_cast<uint64_t>(__builtin_extract_return_addr(__builtin_return_address(0))) - 1;
  *line = at_line;
  asm volatile("" ::: "memory");
}

[[gnu::always_inline]] inline void lib_inlined_callee(DwarfLibProbe* probe, int call_line) {
  probe->call_line = call_line;
  note_call(&probe->inlined_address, &probe->inlined_line, __LINE__);
  g_sink = g_sink + 1;  // keeps the call from becoming a tail jump
}

[[gnu::noinline]] void lib_inlining_caller(DwarfLibProbe* probe) {
  lib_inlined_callee(probe, __LINE__);
  g_sink = g_sink + 2;
}

[[gnu::noinline]] void lib_plain_function(DwarfLibProbe* probe) {
  note_call(&probe->plain_address, &probe->plain_line, __LINE__);
  g_sink = g_sink + 3;
}

}  // namespace dwarf_test_lib

extern "C" [[gnu::visibility("default")]] void symbolize_dwarf_lib_probe(DwarfLibProbe* probe) {
  probe->file = __FILE__;
  dwarf_test_lib::lib_inlining_caller(probe);
  dwarf_test_lib::lib_plain_function(probe);
}

#include "profile/stack_text.h"

#include <cinttypes>
#include <cstdio>
#include <vector>

namespace cpprof::profile {

void append_hex(std::string* out, uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, value);
  *out += buf;
}

void append_address_list(std::string* out, std::span<const uint64_t> return_addresses) {
  for (uint64_t address : return_addresses) {
    *out += ' ';
    append_hex(out, address);
  }
}

void append_stack_record(std::string* out, std::span<const uint64_t> return_addresses,
                         symbolize::Symbolizer& symbolizer) {
  for (uint64_t return_address : return_addresses) {
    const uint64_t pc = return_address - 1;
    const std::vector<symbolize::Frame> symbols = symbolizer.symbolize(pc);
    const uint64_t entry = symbols.empty() ? 0 : symbolizer.function_start(pc);
    bool printed = false;
    for (const symbolize::Frame& frame : symbols) {
      if (frame.function.empty()) continue;
      *out += "#\t";
      append_hex(out, pc);
      *out += '\t' + frame.function + '+';
      append_hex(out, entry != 0 && entry <= pc ? pc - entry : 0);
      *out += '\t' + frame.file + ':' + std::to_string(frame.line) + '\n';
      printed = true;
    }
    if (!printed) {
      *out += "#\t";
      append_hex(out, pc);
      *out += '\n';
    }
  }
  *out += '\n';
}

}  // namespace cpprof::profile

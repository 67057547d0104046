// Stacks in Go's plain-text profiles (runtime/pprof printStackRecord),
// shared by the heap, goroutine and threadcreate debug=1 forms:
//
//   #	0x<pc>	<function>+0x<offset>	<file>:<line>
//
// one line per frame at return address - 1, inlined frames first, the
// offset taken from the start of the out-of-line function; a frame without
// a name shows only its address. Thread-safe as the symbolizer is.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "symbolize/symbolizer.h"

namespace cpprof::profile {

// Appends "0x<value>" in lower-case hex, as Go's %#x.
void append_hex(std::string* out, uint64_t value);

// Appends " 0x<address>" for each return address: the "@" list of a record.
void append_address_list(std::string* out, std::span<const uint64_t> return_addresses);

// Appends the `#` lines of `return_addresses` (innermost first), then an
// empty line.
void append_stack_record(std::string* out, std::span<const uint64_t> return_addresses,
                         symbolize::Symbolizer& symbolizer);

}  // namespace cpprof::profile

// Go's two plain-text endpoints, /debug/pprof/cmdline and /debug/pprof/symbol,
// as pure functions of their inputs (the server adds the headers).
// Thread-safe; symbol_body() calls `symbol_name` on the caller's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace cpprof::http {

// The process's command line with arguments separated by NUL bytes and no
// trailing NUL, as Go's strings.Join(os.Args, "\x00"). Read from
// /proc/self/cmdline; empty if that cannot be read.
std::string read_cmdline();

// /proc/self/cmdline's format (each argument NUL-terminated) -> Go's.
std::string cmdline_from_proc(std::string_view proc_cmdline);

// Parses an unsigned integer the way Go's strconv.ParseUint(s, 0, 64) does:
// 0x/0X hex, 0b/0B binary, 0o/0O or a leading 0 octal, otherwise decimal.
// False on anything else or on overflow.
bool parse_go_uint(std::string_view text, uint64_t* out);

// Go's symbol protocol. `input` is the POST body or, for GET, the raw query:
// addresses separated by '+'. The answer starts "num_symbols: 1\n" (0 when
// `symbol_name` is unset: pprof then knows no symbols are offered) and has
// a line "0x<hex> <name>\n" per address that parses, is nonzero and has a
// name; others are skipped, as Go skips them.
std::string symbol_body(std::string_view input,
                        const std::function<std::string(uint64_t)>& symbol_name);

}  // namespace cpprof::http

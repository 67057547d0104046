// What kind of executable `cpprof run` is about to start. A fully static
// program (gcc -static, -static-pie) has no dynamic loader, so LD_PRELOAD
// never brings libcpprof.so into it: the user must be told, or they get
// nothing in silence.
//
// Reads only the ELF header and program headers (64-bit little-endian, as
// on x86-64 and aarch64). Not signal-safe; for the command line only.
#pragma once

#include <string>

namespace cpprof::cli {

enum class ProgramKind {
  kUnknown,  // not found, unreadable, a script, or not an ELF file we read
  kDynamic,  // has PT_INTERP: the dynamic loader starts it and honours LD_PRELOAD
  kStatic,   // an ELF executable without PT_INTERP: nothing is preloaded
};

// The file execvp would run for `name`: `name` itself if it contains a '/',
// else the first executable regular file `name` in $PATH (the C library's
// default path when PATH is unset; an empty entry is the current
// directory); "" if there is none.
std::string resolve_program(const std::string& name);

// The kind of the executable at `path` (a path, not looked up in $PATH).
ProgramKind program_kind(const std::string& path);

// Before exec: if `name` (resolved as execvp would) is fully static, says
// so in one line on stderr and returns true. Says nothing otherwise, and
// nothing when the file cannot be read (exec reports that).
bool warn_if_statically_linked(const char* name);

}  // namespace cpprof::cli

// Demangled C++ names shortened the way `go tool pprof` shows them by
// default: no parameter lists, no template arguments, no return type, no
// "[clone .constprop.0]" suffix. "void std::sort<int*>(int*, int*)" becomes
// "std::sort". Profiles then merge a function's instantiations and clones
// into one node, and the full name stays in Function.system_name (mangled).
// Thread-safe; allocates.
#pragma once

#include <string>
#include <string_view>

namespace cpprof::symbolize {

// The short form of a demangled name; names that are not C++ come back unchanged.
std::string simplify_function_name(std::string_view demangled);

}  // namespace cpprof::symbolize

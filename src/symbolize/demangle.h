// C++ linkage names to readable ones ("_ZN3foo3barEv" -> "foo::bar()").
//
// Thread-safe; allocates, so not for signal handlers.
#pragma once

#include <string>
#include <string_view>

namespace cpprof::symbolize {

// The demangled form of an Itanium-ABI name, or `name` unchanged if it is
// not mangled (C functions) or cannot be demangled.
std::string demangle(std::string_view name);

}  // namespace cpprof::symbolize

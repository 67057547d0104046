#include "symbolize/demangle.h"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>

namespace cpprof::symbolize {

std::string demangle(std::string_view name) {
  // Only "_Z..." names are mangled C++; asking the demangler about a C name
  // like "f" would return the type "float".
  if (!name.starts_with("_Z")) return std::string(name);
  std::string zero_terminated(name);
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> out(
      abi::__cxa_demangle(zero_terminated.c_str(), nullptr, nullptr, &status), &std::free);
  if (status != 0 || out == nullptr) return zero_terminated;
  return std::string(out.get());
}

}  // namespace cpprof::symbolize

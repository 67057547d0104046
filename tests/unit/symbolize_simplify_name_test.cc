#include "symbolize/simplify_name.h"

#include <gtest/gtest.h>

namespace cpprof::symbolize {
namespace {

TEST(SimplifyFunctionName, DropsParametersTemplatesReturnTypesAndClones) {
  EXPECT_EQ(simplify_function_name("foo::bar(int, char const*)"), "foo::bar");
  EXPECT_EQ(simplify_function_name("void std::sort<int*>(int*, int*)"), "std::sort");
  EXPECT_EQ(
      simplify_function_name(
          "(anonymous namespace)::compute(std::vector<std::string, std::allocator<std::string> "
          "> const&, int) [clone .constprop.0]"),
      "(anonymous namespace)::compute");
  EXPECT_EQ(simplify_function_name("std::vector<int, std::allocator<int> >::push_back(int const&)"),
            "std::vector::push_back");
  EXPECT_EQ(simplify_function_name("Widget::size() const"), "Widget::size");
  EXPECT_EQ(simplify_function_name("unsigned long hash<Key>(Key const&)"), "hash");
}

TEST(SimplifyFunctionName, KeepsOperatorNames) {
  EXPECT_EQ(simplify_function_name("Foo::operator()(int)"), "Foo::operator()");
  EXPECT_EQ(simplify_function_name("operator<<(std::ostream&, Foo const&)"), "operator<<");
  EXPECT_EQ(simplify_function_name("Foo::operator<(Foo const&) const"), "Foo::operator<");
  EXPECT_EQ(simplify_function_name("operator new(unsigned long)"), "operator new");
  EXPECT_EQ(simplify_function_name("Foo::operator->()"), "Foo::operator->");
}

TEST(SimplifyFunctionName, LeavesCNamesAndOddInputAlone) {
  EXPECT_EQ(simplify_function_name("memcpy"), "memcpy");
  EXPECT_EQ(simplify_function_name("__libc_start_main"), "__libc_start_main");
  EXPECT_EQ(simplify_function_name("broken(<"), "broken(<");
  EXPECT_EQ(simplify_function_name(""), "");
}

TEST(SimplifyFunctionName, Lambdas) {
  EXPECT_EQ(simplify_function_name("main::{lambda(int)#1}::operator()(int) const"),
            "main::{lambda#1}::operator()");
}

}  // namespace
}  // namespace cpprof::symbolize

#include "symbolize/demangle.h"

#include <gtest/gtest.h>

namespace cpprof::symbolize {
namespace {

TEST(Demangle, ItaniumNamesBecomeReadable) {
  EXPECT_EQ(demangle("_ZN3foo3barEv"), "foo::bar()");
  EXPECT_EQ(demangle("_ZN6cpprof5twiceIiEET_S1_"), "int cpprof::twice<int>(int)");
  EXPECT_EQ(demangle("_ZN3foo3barEi.cold"), "foo::bar(int) [clone .cold]");
}

TEST(Demangle, CNamesAndGarbageComeBackUnchanged) {
  EXPECT_EQ(demangle("qsort"), "qsort");
  EXPECT_EQ(demangle("f"), "f");  // not "float"
  EXPECT_EQ(demangle(""), "");
  EXPECT_EQ(demangle("_Z"), "_Z");
  EXPECT_EQ(demangle("_ZN3foo"), "_ZN3foo");
}

TEST(Demangle, NamesNeedNotBeNulTerminated) {
  std::string_view longer = "_ZN3foo3barEvXYZ";
  EXPECT_EQ(demangle(longer.substr(0, 13)), "foo::bar()");
}

}  // namespace
}  // namespace cpprof::symbolize

// Whether a test may preload libcpprof.so into a program (LD_PRELOAD,
// `cpprof run`): not in the sanitizer build, whose library needs the
// sanitizer runtime loaded first (DESIGN.md). Such tests skip there.
#pragma once

#include <gtest/gtest.h>

#ifdef CPPROF_SANITIZE
#define SKIP_IF_PRELOAD_IMPOSSIBLE() \
  GTEST_SKIP() << "preloading needs the release build (DESIGN.md)"
#else
#define SKIP_IF_PRELOAD_IMPOSSIBLE() (void)0
#endif

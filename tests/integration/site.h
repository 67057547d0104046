// SITE: for the test programs' functions that profiles must show by name.
// Each such function must stay a function of its own, called, not inlined,
// cloned or folded with another of the same code.
#pragma once

#if defined(__clang__)
#define SITE [[gnu::noinline]]
#else
#define SITE [[gnu::noipa]]
#endif

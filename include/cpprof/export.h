// CPPROF_EXPORT marks the public API: the library is built with hidden
// visibility, so only what carries this mark is visible to programs.
#pragma once

#define CPPROF_EXPORT __attribute__((visibility("default")))

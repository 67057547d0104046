// The interposed allocation family (malloc_hooks.cc, new_hooks.cc; in the
// sanitizer build, the sanitizer's malloc/free hooks instead).
//
// cpprof defines malloc, free, calloc, realloc, reallocarray, memalign,
// posix_memalign, aligned_alloc, valloc, pvalloc, malloc_usable_size and
// every operator new/delete, so that every allocation of the process is
// counted (alloc_counters.h), and forwards each call to the allocator below
// it: the next definition in the loader's search order (glibc's, or
// jemalloc's or tcmalloc's when one is loaded after cpprof). That
// allocator's functions are looked up once, all from the object that
// defines its malloc; a function that object lacks is built from its
// posix_memalign, never taken from another allocator.
//
// Allocations made while the lookup runs (the loader may allocate) come
// from a small static arena; freeing them is a no-op, and realloc copies
// them out. Every hook is async-signal-safe as far as the allocator below
// is, never allocates itself, and takes no lock.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cpprof::capture {

// Whether `pc` lies in the code of an allocation hook: cpprof's frames at
// the top of an allocation's stack, which reports leave out.
bool in_alloc_hooks(uintptr_t pc);

// The file of the allocator the hooks forward to ("" before the first
// allocation, or when the hooks are compiled out).
const char* underlying_allocator();

// Whether the hooks are built in (false in the sanitizer build, where the
// sanitizer's hooks count instead).
bool alloc_hooks_compiled_in();

// Installs the sanitizer's malloc/free hooks (sanitizer build only); true
// if counting works. Called at load; harmless to call again.
bool install_sanitizer_alloc_hooks();

}  // namespace cpprof::capture

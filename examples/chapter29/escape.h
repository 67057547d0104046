// Keeps the optimizer from removing work whose result a lesson measures.
//
// GCC 12 at -O2 deletes a new/delete pair (and the work on the memory in
// between) when the pointer never leaves the function, and a lesson that
// counts allocations would then count nothing. Real code hands its buffers
// to someone; escape() stands in for that someone: it tells the compiler
// that the pointed-to memory may be read and written by code it cannot see,
// and costs no instruction.
#pragma once

namespace chapter29 {

template <class T>
inline void escape(T* ptr) {
  asm volatile("" : : "g"(ptr) : "memory");
}

}  // namespace chapter29

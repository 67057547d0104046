// The lessons of a Go performance chapter, in C++: each lesson is two or
// three functions that compute the same result, one of them allocating
// less. lessons_bench.cc measures them (ns/op, allocs/iter, B/iter) and
// tests/examples/chapter29_lessons_test.cc pins their allocation counts.
//
// Every function returns its result (a string, or a checksum of what it
// built) so that the work is observable; one that frees its memory before
// returning first hands it to escape() (escape.h), so that the compiler
// cannot delete the allocations being measured. Allocation counts below
// are libstdc++'s (GCC 12).
//
// All of them are thread-safe: they share no state. The pool lesson is in
// buffer_pool.h, the leaking worker threads in request_workers.h.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace chapter29 {

// --- Building a string ------------------------------------------------
//
// All three return "0,1,2,...,n-1". In Go, `s += x` copies s every time;
// in C++ it appends in place, and the string's capacity doubles when full
// (15 characters in place, then 30, 60, 120, ...), so `+=` makes
// ceil(log2(length / 15)) allocations rather than n. Reserving the exact
// length first makes one. An ostringstream fills its string's 15 in-place
// characters, then a buffer of 512 that doubles from there, and str()
// copies the text once more.

// `out += piece` for every number and separator.
std::string join_plus_equals(int n);
// Computes the final length, reserve()s it, then appends.
std::string join_reserved(int n);
// `out << i << ','` into a std::ostringstream, then str().
std::string join_ostringstream(int n);

// --- Growing a vector ------------------------------------------------
//
// Both fill a std::vector<int> with 0..n-1 and return the sum of its
// elements. push_back() on a full vector doubles its capacity (1, 2, 4,
// ...), so n push_backs make ceil(log2(n)) + 1 allocations for n >= 1
// (18 for 100,000); reserve(n) first makes exactly one.

uint64_t fill_by_push_back(int n);
uint64_t fill_reserved(int n);

// --- Passing a large struct ------------------------------------------
//
// 4 KiB of counters in place plus three members that own heap memory.
// Passing it by value copies the 4 KiB and allocates once per heap part:
// the title (if longer than the 15 characters std::string keeps in place),
// the samples' array, the tags' array and every long tag.
struct Report {
  std::string title;
  std::vector<double> samples;
  std::vector<std::string> tags;
  std::array<uint64_t, 512> counters{};
};

// A report with a 31-character title, `samples` samples and `tags` tags of
// 21 characters each.
Report make_report(int samples, int tags);
// The number of heap blocks a copy of `report` allocates (what
// summarize_by_value costs more than summarize_by_ref).
int heap_parts(const Report& report);

// The same checksum over every field; the first gets its own copy.
uint64_t summarize_by_value(Report report);
uint64_t summarize_by_ref(const Report& report);

// --- The stack or the heap -------------------------------------------
//
// The same checksum over 256 pseudo-random words, mixed by a function
// object holding 64 bytes of state. checksum_on_stack keeps everything in
// its frame (a std::array and a lambda passed as a template argument):
// no allocation. checksum_on_heap makes the choices that send objects to
// the heap: the words in a std::make_unique'd array (1), their squares in
// a std::vector (1), and the mixer in a std::function, whose 16-byte
// in-place buffer cannot hold the 64-byte lambda (1): 3 allocations.

uint64_t checksum_on_stack(uint64_t seed);
uint64_t checksum_on_heap(uint64_t seed);

}  // namespace chapter29

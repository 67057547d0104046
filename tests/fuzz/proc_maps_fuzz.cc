// libFuzzer target: /proc/self/maps parsing and the mapping set built from
// it must accept any text without crashing and keep their invariants.
//
// Not built by default (see README.md). Build and run, for example:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
//     tests/fuzz/proc_maps_fuzz.cc src/symbolize/*.cc -o /tmp/proc_maps_fuzz
//   /tmp/proc_maps_fuzz -max_total_time=60 tests/fuzz/corpus/proc_maps_fuzz
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "symbolize/mapping_set.h"
#include "symbolize/proc_maps.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cpprof::symbolize;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  MappingSet set;
  for (const MapsEntry& entry : parse_proc_maps(text)) {
    if (entry.start >= entry.limit || entry.perms.size() != 4) __builtin_trap();
    if (entry.path.find('\n') != std::string::npos) __builtin_trap();
    set.add(entry);
    // What was just added must be found at its own start.
    size_t found = set.find(entry.start);
    if (found == SIZE_MAX) __builtin_trap();
    const MapsEntry& hit = set.all()[found].entry;
    if (entry.start < hit.start || entry.start >= hit.limit) __builtin_trap();
  }
  for (size_t i = 1; i < set.all().size(); ++i) {
    if (set.all()[i - 1].entry.start > set.all()[i].entry.start) __builtin_trap();
  }
  return 0;
}

// Decoding one loaded object's .eh_frame (found through its
// PT_GNU_EH_FRAME segment) into the rows capture/unwind.h walks with.
// x86-64 only; elsewhere nothing is decoded and the walk uses frame
// pointers. Allocates: never for signal handlers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "capture/unwind.h"

namespace cpprof::sources {

// Readable loaded ranges [first, second) of one object.
using Segments = std::vector<std::pair<uintptr_t, uintptr_t>>;

// The decoded rows of one object.
struct ObjectRows {
  std::string name;  // as the loader names it ("" for the main program)
  uintptr_t base = 0;
  uintptr_t start = 0;
  uintptr_t limit = 0;
  std::vector<capture::UnwindRow> rows;  // sorted, merged, gaps marked kNone
  std::vector<uint32_t> page_first;
  size_t fdes = 0;  // frame descriptions decoded
};

// Decodes the rows of one object from its PT_GNU_EH_FRAME segment.
// `segments` are the object's readable loaded ranges [first, second), used
// to bound every read. Returns false if the object has no usable table.
bool decode_eh_frame(uintptr_t base, uintptr_t eh_frame_hdr, const Segments& segments,
                     ObjectRows* out);

}  // namespace cpprof::sources

// Lesson: a pool for temporary buffers (buffer_pool.h).
#include "buffer_pool.h"

#include <charconv>
#include <cstdint>
#include <memory>

#include "escape.h"

namespace chapter29 {
namespace {

// Writes the reply into `buffer` (as much as fits) and checksums it.
uint64_t render(ScratchBuffer& buffer, int request, int numbers) {
  buffer.used = 0;
  char* const begin = buffer.bytes.data();
  char* const end = begin + buffer.bytes.size();
  char* out = std::to_chars(begin, end, request).ptr;
  for (int i = 0; i < numbers && end - out > 24; ++i) {
    *out++ = ' ';
    out = std::to_chars(out, end, static_cast<int64_t>(i) * i).ptr;
  }
  buffer.used = static_cast<std::size_t>(out - begin);
  escape(begin);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < buffer.used; ++i) {
    h = (h ^ static_cast<unsigned char>(begin[i])) * 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

uint64_t render_with_new(int request, int numbers) {
  auto buffer = std::make_unique<ScratchBuffer>();
  return render(*buffer, request, numbers);
}

uint64_t render_with_pool(BufferPool& pool, int request, int numbers) {
  auto buffer = pool.lease();
  return render(*buffer, request, numbers);
}

}  // namespace chapter29

// A bounds-checked cursor over an object's loaded memory, with the
// readers .eh_frame needs (LEB128, DW_EH_PE_* pointers). A read that would
// leave the segment holding the start, or the given end, fails and makes
// every later read fail: callers check ok() once at the end of a record.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "sources/cpu/eh_frame.h"

namespace cpprof::sources::eh {

// Pointer encodings (DW_EH_PE_*).
constexpr uint8_t kPeOmit = 0xff;
constexpr uint8_t kPeIndirect = 0x80;

// A bounds-checked cursor over the object's loaded memory.
class Cursor {
 public:
  // Reads may go from `at` up to `end`, and never past the end of the
  // loaded segment holding `at` (none: every read fails).
  Cursor(const Segments& segments, uintptr_t at, uintptr_t end) : at_(at), end_(at), ok_(false) {
    for (const auto& [lo, hi] : segments) {
      if (at >= lo && at < hi) {
        end_ = std::min(end, hi);
        ok_ = true;
      }
    }
  }

  bool ok() const { return ok_; }
  uintptr_t at() const { return at_; }
  uintptr_t end() const { return end_; }
  // Moves forward to `at`, which must not lie past the end.
  void seek(uintptr_t at) {
    if (at < at_ || at > end_) {
      ok_ = false;
    } else {
      at_ = at;
    }
  }
  // Skips `n` bytes, which must all lie before the end.
  void skip(uint64_t n) {
    if (!ok_ || n > end_ - at_) {
      ok_ = false;
    } else {
      at_ += n;
    }
  }

  template <typename T>
  T read() {
    T value{};
    if (!ok_ || end_ - at_ < sizeof(T) || at_ > end_) {
      ok_ = false;
      return value;
    }
    std::memcpy(&value, reinterpret_cast<const void*>(at_), sizeof(T));
    at_ += sizeof(T);
    return value;
  }

  uint64_t uleb() {
    uint64_t value = 0;
    for (int shift = 0; ok_; shift += 7) {
      auto byte = read<uint8_t>();
      if (shift < 64) value |= uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) break;
    }
    return value;
  }

  int64_t sleb() {
    uint64_t value = 0;
    int shift = 0;
    uint8_t byte = 0;
    do {
      byte = read<uint8_t>();
      if (shift < 64) value |= uint64_t{byte & 0x7fu} << shift;
      shift += 7;
    } while (ok_ && (byte & 0x80) != 0);
    if (shift < 64 && (byte & 0x40) != 0) value |= ~uint64_t{0} << shift;
    return static_cast<int64_t>(value);
  }

  // A pointer in `encoding`; `data_base` serves DW_EH_PE_datarel. False
  // for encodings we do not follow.
  bool pointer(uint8_t encoding, uintptr_t data_base, uintptr_t* out) {
    if (encoding == kPeOmit) return false;
    uintptr_t field = at_;
    uint64_t value = 0;
    switch (encoding & 0x0f) {
      case 0x00:
        value = read<uint64_t>();
        break;
      case 0x01:
        value = uleb();
        break;
      case 0x02:
        value = read<uint16_t>();
        break;
      case 0x03:
        value = read<uint32_t>();
        break;
      case 0x04:
        value = read<uint64_t>();
        break;
      case 0x09:
        value = static_cast<uint64_t>(sleb());
        break;
      case 0x0a:
        value = static_cast<uint64_t>(int64_t{read<int16_t>()});
        break;
      case 0x0b:
        value = static_cast<uint64_t>(int64_t{read<int32_t>()});
        break;
      case 0x0c:
        value = read<uint64_t>();
        break;
      default:
        ok_ = false;
        return false;
    }
    switch (encoding & 0x70) {
      case 0x00:
        break;
      case 0x10:
        value += field;
        break;
      case 0x30:
        value += data_base;
        break;
      default:
        return false;
    }
    *out = static_cast<uintptr_t>(value);
    return ok_;
  }

 private:
  uintptr_t at_;
  uintptr_t end_;
  bool ok_;
};

}  // namespace cpprof::sources::eh

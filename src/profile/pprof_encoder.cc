// profile.proto by hand: the message is small and flat enough that a varint
// writer and a string table are all it takes, and it keeps libprotobuf out of
// every host process. Field numbers are those of
// github.com/google/pprof/proto/profile.proto.
#include "profile/pprof_encoder.h"

#include <zlib.h>

#include <cstdint>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace cpprof::profile {
namespace {

// Protobuf wire format into a byte string. Zero scalars are omitted, as
// proto3 does; a nested message is encoded into its own Encoder and then
// copied in, which costs a copy per message but needs no size pre-pass.
class Encoder {
 public:
  void uint_field(int field, uint64_t value) {
    if (value == 0) return;
    tag(field, kVarint);
    varint(value);
  }
  // Negative int64 travels as its two's complement: ten bytes, as protobuf says.
  void int_field(int field, int64_t value) { uint_field(field, static_cast<uint64_t>(value)); }
  void bool_field(int field, bool value) { uint_field(field, value ? 1 : 0); }

  // Always written, even when empty: the string table's "" must be present.
  void bytes_field(int field, std::string_view bytes) {
    tag(field, kLengthDelimited);
    varint(bytes.size());
    out_.append(bytes);
  }
  void message_field(int field, const Encoder& message) { bytes_field(field, message.out_); }

  template <typename T>
  void packed_field(int field, std::span<const T> values) {
    if (values.empty()) return;
    Encoder packed;
    for (T v : values) packed.varint(static_cast<uint64_t>(v));
    bytes_field(field, packed.out_);
  }

  std::string take() && { return std::move(out_); }

 private:
  static constexpr int kVarint = 0;
  static constexpr int kLengthDelimited = 2;

  void tag(int field, int wire_type) { varint(static_cast<uint64_t>(field) << 3 | wire_type); }
  void varint(uint64_t value) {
    while (value >= 0x80) {
      out_.push_back(static_cast<char>(value | 0x80));
      value >>= 7;
    }
    out_.push_back(static_cast<char>(value));
  }

  std::string out_;
};

// profile.proto refers to strings by index; index 0 is always "".
class StringTable {
 public:
  StringTable() { index(""); }

  int64_t index(const std::string& s) {
    auto [it, inserted] = by_string_.try_emplace(s, static_cast<int64_t>(strings_.size()));
    if (inserted) strings_.push_back(s);
    return it->second;
  }
  const std::vector<std::string>& strings() const { return strings_; }

 private:
  std::unordered_map<std::string, int64_t> by_string_;
  std::vector<std::string> strings_;
};

Encoder value_type(const ValueType& vt, StringTable& strings) {
  Encoder e;
  e.int_field(1, strings.index(vt.type));
  e.int_field(2, strings.index(vt.unit));
  return e;
}

Encoder sample(const Sample& s, StringTable& strings) {
  Encoder e;
  e.packed_field<uint64_t>(1, s.location_ids);
  e.packed_field<int64_t>(2, s.values);
  for (const Label& label : s.labels) {
    Encoder l;
    l.int_field(1, strings.index(label.key));
    if (!label.str.empty()) {
      l.int_field(2, strings.index(label.str));
    } else {
      l.int_field(3, label.num);
      l.int_field(4, strings.index(label.num_unit));
    }
    e.message_field(3, l);
  }
  return e;
}

Encoder mapping(const Mapping& m, StringTable& strings) {
  Encoder e;
  e.uint_field(1, m.id);
  e.uint_field(2, m.memory_start);
  e.uint_field(3, m.memory_limit);
  e.uint_field(4, m.file_offset);
  e.int_field(5, strings.index(m.filename));
  e.int_field(6, strings.index(m.build_id));
  e.bool_field(7, m.has_functions);
  e.bool_field(8, m.has_filenames);
  e.bool_field(9, m.has_line_numbers);
  e.bool_field(10, m.has_inline_frames);
  return e;
}

Encoder location(const Location& loc) {
  Encoder e;
  e.uint_field(1, loc.id);
  e.uint_field(2, loc.mapping_id);
  e.uint_field(3, loc.address);
  for (const Line& line : loc.lines) {
    Encoder l;
    l.uint_field(1, line.function_id);
    l.int_field(2, line.line);
    e.message_field(4, l);
  }
  return e;
}

Encoder function(const Function& f, StringTable& strings) {
  Encoder e;
  e.uint_field(1, f.id);
  e.int_field(2, strings.index(f.name));
  e.int_field(3, strings.index(f.system_name));
  e.int_field(4, strings.index(f.filename));
  e.int_field(5, f.start_line);
  return e;
}

}  // namespace

std::string encode_pprof(const Profile& p) {
  StringTable strings;
  Encoder e;
  for (const ValueType& vt : p.sample_types) e.message_field(1, value_type(vt, strings));
  for (const Sample& s : p.samples) e.message_field(2, sample(s, strings));
  for (const Mapping& m : p.mappings) e.message_field(3, mapping(m, strings));
  for (const Location& loc : p.locations) e.message_field(4, location(loc));
  for (const Function& f : p.functions) e.message_field(5, function(f, strings));
  e.int_field(9, p.time_nanos);
  e.int_field(10, p.duration_nanos);
  if (!p.period_type.type.empty() || !p.period_type.unit.empty()) {
    e.message_field(11, value_type(p.period_type, strings));
  }
  e.int_field(12, p.period);
  for (const std::string& c : p.comments) e.int_field(13, strings.index(c));
  e.int_field(14, strings.index(p.default_sample_type));
  // Last, once every string is known; decoders accept fields in any order.
  for (const std::string& s : strings.strings()) e.bytes_field(6, s);
  return std::move(e).take();
}

std::string gzip(std::string_view data) {
  if (data.size() > UINT32_MAX / 2) throw std::length_error("gzip: input too large");
  z_stream zs{};
  // windowBits 15 + 16 asks zlib for a gzip header and trailer instead of zlib's.
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw std::bad_alloc();
  }
  std::string out(deflateBound(&zs, data.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  // deflateBound covers the whole stream, so one Z_FINISH call completes it.
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip: deflate did not finish");
  return out;
}

std::string encode_pprof_gz(const Profile& profile) { return gzip(encode_pprof(profile)); }

}  // namespace cpprof::profile

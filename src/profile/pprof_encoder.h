// Encodes a Profile as profile.proto, and gzips it as /debug/pprof serves it.
// Pure functions of their input; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "profile/profile.h"

namespace cpprof::profile {

// The serialized (uncompressed) profile.proto message. The string table
// starts with "" and holds each string once.
std::string encode_pprof(const Profile& profile);

// `data` compressed as a gzip stream (zlib, default level).
std::string gzip(std::string_view data);

// encode_pprof + gzip: what `go tool pprof` downloads.
std::string encode_pprof_gz(const Profile& profile);

}  // namespace cpprof::profile

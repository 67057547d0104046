// The parser of `go tool pprof -raw` text (pprof's Profile.String() in
// github.com/google/pprof/profile/profile.go), and read_raw on top of it.
#include "support/pprof_tool.h"

#include <time.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace cpprof::test {
namespace {

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    text = nl == std::string_view::npos ? "" : text.substr(nl + 1);
  }
  return lines;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Whole-string integer; "0x" prefix means hex.
template <typename T>
bool parse_int(std::string_view s, T* out) {
  int base = 10;
  if (starts_with(s, "0x")) {
    s.remove_prefix(2);
    base = 16;
  }
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && end == s.data() + s.size();
}

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    s = trim(s);
    if (s.empty()) return out;
    const size_t sp = s.find(' ');
    out.push_back(s.substr(0, sp));
    s = sp == std::string_view::npos ? "" : s.substr(sp);
  }
}

// Go's Time.String() under TZ=UTC: "2006-01-02 15:04:05.999999999 +0000 UTC".
bool parse_time(std::string_view s, int64_t* nanos) {
  struct tm tm = {};
  int frac_start = 0;
  const std::string str(s);
  if (sscanf(str.c_str(), "%d-%d-%d %d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
             &tm.tm_min, &tm.tm_sec, &frac_start) != 6) {
    return false;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t frac = 0;
  std::string_view rest = s.substr(frac_start);
  if (starts_with(rest, ".")) {
    int digits = 0;
    rest.remove_prefix(1);
    for (; !rest.empty() && rest.front() >= '0' && rest.front() <= '9'; rest.remove_prefix(1)) {
      frac = frac * 10 + (rest.front() - '0');
      ++digits;
    }
    for (; digits < 9; ++digits) frac *= 10;
  }
  if (!starts_with(rest, " +0000")) return false;  // TZ=UTC is forced by run_pprof
  *nanos = static_cast<int64_t>(timegm(&tm)) * 1000000000 + frac;
  return true;
}

// The `-top` header's duration: "%.2f" and a unit, ".00" trimmed ("10.01s").
bool parse_scaled_duration(std::string_view s, int64_t* nanos) {
  size_t unit_at = 0;
  while (unit_at < s.size() && (isdigit(s[unit_at]) || s[unit_at] == '.')) ++unit_at;
  const std::string number(s.substr(0, unit_at));
  const std::string_view unit = s.substr(unit_at);
  double scale = 0;
  if (unit == "ns") scale = 1;
  if (unit == "us") scale = 1e3;
  if (unit == "ms") scale = 1e6;
  if (unit == "s" || (unit.empty() && number == "0")) scale = 1e9;
  if (unit == "hrs") scale = 3600e9;
  if (scale == 0 || number.empty()) return false;
  *nanos = static_cast<int64_t>(std::stod(number) * scale + 0.5);
  return true;
}

// "name file:line s=start" with "(system_name)" appended when it differs.
// Names may hold spaces, so anchor on the first " s=<n>" that ends the line
// or is followed by "(", with ":<n>" right before the file name. The text is
// ambiguous when a relative file name holds a space (or a function name holds
// " /"); we assume neither.
bool parse_line(std::string_view s, RawLine* out) {
  if (s == "??") {
    out->function = "??";
    return true;
  }
  for (size_t at = s.find(" s="); at != std::string_view::npos; at = s.find(" s=", at + 1)) {
    std::string_view after = s.substr(at + 3);
    const size_t digits_end = std::min(after.find('('), after.size());
    if (!parse_int(after.substr(0, digits_end), &out->start_line)) continue;
    after.remove_prefix(digits_end);
    if (!after.empty() && after.back() != ')') continue;
    const std::string_view before = s.substr(0, at);
    const size_t colon = before.rfind(':');
    if (colon == std::string_view::npos || !parse_int(before.substr(colon + 1), &out->line)) {
      continue;
    }
    // An absolute file name may hold spaces: prefer the last " /" to the last " ".
    size_t space = before.rfind(" /", colon);
    if (space == std::string_view::npos) space = before.rfind(' ', colon);
    if (space == std::string_view::npos) {
      if (colon != 0) continue;
      out->function.clear();  // empty name and file: the line began " :<n>"
      out->file.clear();
    } else {
      out->function = std::string(before.substr(0, space));
      out->file = std::string(before.substr(space + 1, colon - space - 1));
    }
    out->system_name =
        after.empty() ? out->function : std::string(after.substr(1, after.size() - 2));
    return true;
  }
  return false;
}

// "     1: 0x4011d6 M=1 [F] name file:line s=0" (M= and [F] optional, lines optional).
bool parse_location(std::string_view s, RawLocation* out) {
  s = trim(s);
  const size_t colon = s.find(": ");
  if (colon == std::string_view::npos || !parse_int(s.substr(0, colon), &out->id)) return false;
  s.remove_prefix(colon + 2);
  const size_t sp = std::min(s.find(' '), s.size());
  if (!parse_int(s.substr(0, sp), &out->address)) return false;
  s = trim(s.substr(sp));
  if (starts_with(s, "M=")) {
    const size_t end = std::min(s.find(' '), s.size());
    if (!parse_int(s.substr(2, end - 2), &out->mapping_id)) return false;
    s = trim(s.substr(end));
  }
  if (starts_with(s, "[F]")) {
    out->folded = true;
    s = trim(s.substr(3));
  }
  if (s.empty()) return true;
  RawLine line;
  if (!parse_line(s, &line)) return false;
  out->lines.push_back(std::move(line));
  return true;
}

// "1: 0x400000/0x500000/0x0 /path/file buildid [FN][FL][LN][IN]".
bool parse_mapping(std::string_view s, RawMapping* out) {
  const size_t colon = s.find(": ");
  if (colon == std::string_view::npos || !parse_int(s.substr(0, colon), &out->id)) return false;
  s.remove_prefix(colon + 2);
  const size_t sp = s.find(' ');
  if (sp == std::string_view::npos) return false;
  const std::string_view addrs = s.substr(0, sp);
  const size_t slash1 = addrs.find('/'), slash2 = addrs.rfind('/');
  if (slash1 == slash2 || !parse_int(addrs.substr(0, slash1), &out->start) ||
      !parse_int(addrs.substr(slash1 + 1, slash2 - slash1 - 1), &out->limit) ||
      !parse_int(addrs.substr(slash2 + 1), &out->offset)) {
    return false;
  }
  // The file name may hold spaces; build id and flags never do: split from the right.
  std::string_view rest = s.substr(sp + 1);
  const size_t flags_at = rest.rfind(' ');
  if (flags_at == std::string_view::npos) return false;
  const std::string_view flags = rest.substr(flags_at + 1);
  rest = rest.substr(0, flags_at);
  const size_t build_at = rest.rfind(' ');
  if (build_at == std::string_view::npos) return false;
  out->filename = std::string(rest.substr(0, build_at));
  out->build_id = std::string(rest.substr(build_at + 1));
  out->has_functions = flags.find("[FN]") != std::string_view::npos;
  out->has_filenames = flags.find("[FL]") != std::string_view::npos;
  out->has_line_numbers = flags.find("[LN]") != std::string_view::npos;
  out->has_inline_frames = flags.find("[IN]") != std::string_view::npos;
  return true;
}

// "key:[v1 v2] key2:[5 bytes]"; values are printed with Go's %v of a slice.
bool parse_labels(std::string_view s, RawSample* out) {
  s = trim(s);
  while (!s.empty()) {
    const size_t open = s.find(":[");
    if (open == std::string_view::npos) return false;
    size_t close = s.find("] ", open);
    if (close == std::string_view::npos) {
      if (s.back() != ']') return false;
      close = s.size() - 1;
    }
    out->labels[std::string(s.substr(0, open))] = std::string(s.substr(open + 2, close - open - 2));
    s = trim(s.substr(close + 1));
  }
  return true;
}

// " 1 10000000: 1 2 3 " (values, then location ids leaf first).
bool parse_sample(std::string_view s, RawSample* out) {
  const size_t colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  for (std::string_view v : split_spaces(s.substr(0, colon))) {
    if (!parse_int(v, &out->values.emplace_back())) return false;
  }
  for (std::string_view id : split_spaces(s.substr(colon + 1))) {
    if (!parse_int(id, &out->location_ids.emplace_back())) return false;
  }
  return true;
}

bool parse_header(std::string_view line, RawProfile* out) {
  if (starts_with(line, "Comment: ")) {
    out->comments.emplace_back(line.substr(9));
  } else if (starts_with(line, "PeriodType: ")) {
    const std::string_view rest = line.substr(12);
    const size_t sp = rest.find(' ');
    if (sp == std::string_view::npos) return false;
    out->has_period_type = true;
    out->period_type = {std::string(rest.substr(0, sp)), std::string(rest.substr(sp + 1))};
  } else if (starts_with(line, "Period: ")) {
    return parse_int(line.substr(8), &out->period);
  } else if (starts_with(line, "Time: ")) {
    return parse_time(line.substr(6), &out->time_nanos);
  } else if (starts_with(line, "Duration: ")) {
    out->duration_text = std::string(line.substr(10));
  } else {
    return false;
  }
  return true;
}

bool parse_sample_types(std::string_view line, RawProfile* out) {
  for (std::string_view token : split_spaces(line)) {
    const size_t slash = token.find('/');
    if (slash == std::string_view::npos) return false;
    std::string_view unit = token.substr(slash + 1);
    const bool is_default = unit.size() >= 6 && unit.substr(unit.size() - 6) == "[dflt]";
    if (is_default) unit.remove_suffix(6);
    out->sample_types.push_back({std::string(token.substr(0, slash)), std::string(unit)});
    if (is_default) out->default_sample_type = out->sample_types.back().type;
  }
  return true;
}

::testing::AssertionResult failed_run(const char* what, const PprofResult& r) {
  return ::testing::AssertionFailure()
         << "go tool pprof " << what << " exited " << r.exit_code << "; stderr:\n"
         << r.err;
}

// -raw has lost the duration's unit, -top's header keeps it: take it from there.
// `run` runs pprof with the given flags on the one profile being read.
template <typename Run>
::testing::AssertionResult read_raw_with(Run run, RawProfile* out) {
  const PprofResult raw = run({"-raw"});
  if (!raw.ok()) return failed_run("-raw", raw);
  std::string error;
  if (!parse_raw(raw.out, out, &error)) {
    return ::testing::AssertionFailure() << error << "\nin pprof -raw output:\n" << raw.out;
  }
  if (out->duration_text.empty()) return ::testing::AssertionSuccess();
  const PprofResult top = run({"-top"});
  if (!top.ok()) return failed_run("-top", top);
  const size_t at = top.out.find("Duration: ");
  const size_t end = top.out.find(',', at);
  if (at == std::string::npos || end == std::string::npos ||
      !parse_scaled_duration(std::string_view(top.out).substr(at + 10, end - at - 10),
                             &out->duration_nanos)) {
    return ::testing::AssertionFailure() << "no Duration in pprof -top output:\n" << top.out;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

const RawLocation* RawProfile::location(uint64_t id) const {
  for (const RawLocation& l : locations) {
    if (l.id == id) return &l;
  }
  return nullptr;
}

const RawMapping* RawProfile::mapping(uint64_t id) const {
  for (const RawMapping& m : mappings) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

int RawProfile::sample_type_index(std::string_view type) const {
  for (size_t i = 0; i < sample_types.size(); ++i) {
    if (sample_types[i].type == type) return static_cast<int>(i);
  }
  return -1;
}

std::vector<std::string> RawProfile::stack(const RawSample& sample) const {
  std::vector<std::string> names;
  for (uint64_t id : sample.location_ids) {
    const RawLocation* loc = location(id);
    if (loc == nullptr) {
      names.push_back("(no location " + std::to_string(id) + ")");
      continue;
    }
    if (loc->lines.empty()) {
      char hex[32];
      snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(loc->address));
      names.push_back(hex);
    }
    for (const RawLine& line : loc->lines) names.push_back(line.function);
  }
  return names;
}

bool parse_raw(std::string_view text, RawProfile* out, std::string* error) {
  *out = RawProfile();
  enum { kHeader, kSampleTypes, kSamples, kLocations, kMappings } section = kHeader;
  int line_number = 0;
  for (std::string_view line : split_lines(text)) {
    ++line_number;
    bool ok = true;
    if (line == "Samples:" && section == kHeader) {
      section = kSampleTypes;
    } else if (line == "Locations" && section == kSamples) {
      section = kLocations;
    } else if (line == "Mappings" && section == kLocations) {
      section = kMappings;
    } else if (section == kHeader) {
      ok = parse_header(line, out);
    } else if (section == kSampleTypes) {
      ok = parse_sample_types(line, out);
      section = kSamples;
    } else if (section == kSamples) {
      // Label lines are indented by exactly 16 spaces; values by at most 11.
      if (starts_with(line, std::string(16, ' '))) {
        ok = !out->samples.empty() && parse_labels(line, &out->samples.back());
      } else {
        ok = parse_sample(line, &out->samples.emplace_back());
      }
    } else if (section == kLocations) {
      // Inlined callers continue the previous location on lines indented by 13.
      if (starts_with(line, std::string(13, ' ')) && !out->locations.empty()) {
        RawLine l;
        ok = parse_line(trim(line), &l);
        out->locations.back().lines.push_back(std::move(l));
      } else {
        ok = parse_location(line, &out->locations.emplace_back());
      }
    } else if (!trim(line).empty()) {
      ok = parse_mapping(line, &out->mappings.emplace_back());
    }
    if (!ok) {
      *error =
          "cannot parse line " + std::to_string(line_number) + ": \"" + std::string(line) + "\"";
      return false;
    }
  }
  if (section != kMappings) {
    *error = "pprof -raw output ended before its Mappings section";
    return false;
  }
  return true;
}

::testing::AssertionResult read_raw(std::string_view profile_bytes, RawProfile* out) {
  return read_raw_with(
      [&](const std::vector<std::string>& flags) {
        return run_pprof_on_bytes(profile_bytes, flags);
      },
      out);
}

::testing::AssertionResult read_raw_file(const std::string& profile_path, RawProfile* out) {
  if (profile_path.find("://") != std::string::npos) {
    // Fetch a URL once (a CPU profile takes seconds, and a second fetch would
    // be another profile): pprof writes what it decoded with -proto.
    const PprofResult fetched = run_pprof(profile_path, {"-proto"});
    if (!fetched.ok()) return failed_run("-proto", fetched);
    return read_raw(fetched.out, out);
  }
  return read_raw_with(
      [&](const std::vector<std::string>& flags) { return run_pprof(profile_path, flags); }, out);
}

}  // namespace cpprof::test

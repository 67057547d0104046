#include "profile/builder.h"

#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace cpprof::profile {
namespace {

// Our executable as /proc/self/maps names it (both come from the kernel's
// d_path, so they compare equal, " (deleted)" suffix included).
std::string main_executable_path() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

}  // namespace

ProfileBuilder::ProfileBuilder(symbolize::Symbolizer& symbolizer,
                               std::vector<ValueType> sample_types, ValueType period_type,
                               int64_t period)
    : symbolizer_(symbolizer) {
  symbolizer_.refresh();  // objects loaded since the last profile get their mappings
  profile_.sample_types = std::move(sample_types);
  profile_.period_type = std::move(period_type);
  profile_.period = period;
}

void ProfileBuilder::add_sample(std::span<const uint64_t> stack, std::span<const int64_t> values,
                                std::vector<Label> labels) {
  // pprof rejects the whole profile over one such sample; fail where the bug is.
  if (values.size() != profile_.sample_types.size()) {
    throw std::invalid_argument("ProfileBuilder: one value per sample type expected");
  }
  Sample sample;
  sample.location_ids.reserve(stack.size());
  for (uint64_t address : stack) sample.location_ids.push_back(location_for(address));
  sample.values.assign(values.begin(), values.end());
  sample.labels = std::move(labels);
  profile_.samples.push_back(std::move(sample));
}

void ProfileBuilder::add_synthetic_sample(std::string_view function_name,
                                          std::span<const int64_t> values) {
  if (values.size() != profile_.sample_types.size()) {
    throw std::invalid_argument("ProfileBuilder: one value per sample type expected");
  }
  const std::string name(function_name);
  auto [it, inserted] = synthetic_location_by_name_.try_emplace(name, 0);
  if (inserted) {
    Location loc;
    loc.id = profile_.locations.size() + 1;
    loc.lines.push_back({function_for(name, name, "", 0), 0});
    it->second = loc.id;
    profile_.locations.push_back(std::move(loc));
  }
  Sample sample;
  sample.location_ids.push_back(it->second);
  sample.values.assign(values.begin(), values.end());
  profile_.samples.push_back(std::move(sample));
}

void ProfileBuilder::set_time(int64_t time_nanos, int64_t duration_nanos) {
  profile_.time_nanos = time_nanos;
  profile_.duration_nanos = duration_nanos;
}

void ProfileBuilder::set_default_sample_type(std::string type) {
  profile_.default_sample_type = std::move(type);
}

void ProfileBuilder::add_comment(std::string comment) {
  profile_.comments.push_back(std::move(comment));
}

Profile ProfileBuilder::build() {
  symbolize_locations();
  order_mappings();
  return std::move(profile_);
}

uint64_t ProfileBuilder::location_for(uint64_t address) {
  auto [it, inserted] = location_by_address_.try_emplace(address, 0);
  if (!inserted) return it->second;
  Location loc;
  loc.id = profile_.locations.size() + 1;
  loc.address = address;
  loc.mapping_id = mapping_for(address);
  it->second = loc.id;
  profile_.locations.push_back(std::move(loc));
  return it->second;
}

uint64_t ProfileBuilder::mapping_for(uint64_t address) {
  symbolize::Mapping found;
  if (!symbolizer_.find_mapping(address, &found)) return 0;
  auto [it, inserted] = mapping_by_start_.try_emplace(found.start, 0);
  if (inserted) {
    Mapping m;
    m.id = profile_.mappings.size() + 1;
    m.memory_start = found.start;
    m.memory_limit = found.limit;
    m.file_offset = found.file_offset;
    m.filename = std::move(found.path);
    m.build_id = std::move(found.build_id);
    it->second = m.id;
    profile_.mappings.push_back(std::move(m));
  }
  return it->second;
}

uint64_t ProfileBuilder::function_for(const std::string& name, const std::string& system_name,
                                      const std::string& file, int64_t start_line) {
  std::string key = name;
  key.append(1, '\0').append(system_name).append(1, '\0').append(file);
  auto [it, inserted] = function_by_key_.try_emplace(std::move(key), 0);
  if (inserted) {
    Function f;
    f.id = profile_.functions.size() + 1;
    f.name = name;
    f.system_name = system_name;
    f.filename = file;
    f.start_line = start_line;
    it->second = f.id;
    profile_.functions.push_back(std::move(f));
  }
  return it->second;
}

void ProfileBuilder::symbolize_locations() {
  for (Location& loc : profile_.locations) {
    // Synthetic locations already have their line; unmapped addresses have no
    // object to read symbols from.
    if (loc.mapping_id == 0) continue;
    Mapping& mapping = profile_.mappings[loc.mapping_id - 1];  // ids are still index + 1
    for (const symbolize::Frame& frame : symbolizer_.symbolize(loc.address)) {
      // A nameless function would print as an empty string in pprof; an
      // unsymbolized location at least shows its address.
      if (frame.function.empty()) continue;
      const std::string& system_name = frame.raw_name.empty() ? frame.function : frame.raw_name;
      loc.lines.push_back(
          {function_for(frame.function, system_name, frame.file, frame.start_line), frame.line});
      // pprof reads these flags as "already symbolized, don't redo it".
      mapping.has_functions = true;
      mapping.has_filenames |= !frame.file.empty();
      mapping.has_line_numbers |= frame.line > 0;
      // Files and lines come only from DWARF, and wherever the symbolizer
      // reads DWARF it expands inlined calls: this location's inlined
      // frames, if it has any, are all there.
      mapping.has_inline_frames |= !frame.file.empty() || frame.line > 0;
    }
  }
}

void ProfileBuilder::order_mappings() {
  const std::string exe = main_executable_path();
  auto is_main = [&](const Mapping& m) { return !exe.empty() && m.filename == exe; };
  // pprof names the profile after mapping[0]'s file, so the executable is
  // listed even when no sample lies in it (e.g. a heap profile of libstdc++).
  if (std::none_of(profile_.mappings.begin(), profile_.mappings.end(), is_main)) {
    for (const symbolize::Mapping& m : symbolizer_.mappings()) {
      if (m.path == exe) {
        mapping_for(m.start);
        break;
      }
    }
  }
  // The rest stay in order of first use.
  std::stable_partition(profile_.mappings.begin(), profile_.mappings.end(), is_main);
  std::vector<uint64_t> new_id(profile_.mappings.size() + 1, 0);
  for (size_t i = 0; i < profile_.mappings.size(); ++i) {
    new_id[profile_.mappings[i].id] = i + 1;
    profile_.mappings[i].id = i + 1;
  }
  for (Location& loc : profile_.locations) loc.mapping_id = new_id[loc.mapping_id];
  for (auto& [start, id] : mapping_by_start_) id = new_id[id];
}

}  // namespace cpprof::profile

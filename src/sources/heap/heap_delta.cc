#include "sources/heap/heap_delta.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace cpprof::sources {
namespace {

using profile::Function;
using profile::Location;
using profile::Mapping;
using profile::Profile;
using profile::Sample;

// What identifies a location across two profiles of one process: its
// address and what it was symbolized to (synthetic frames have only the
// latter).
std::string location_key(const Profile& p, const Location& loc) {
  std::string key = std::to_string(loc.address);
  for (const profile::Line& line : loc.lines) {
    const Function& f = p.functions.at(line.function_id - 1);
    key.append(1, '\0').append(f.name).append(1, '\0').append(std::to_string(line.line));
  }
  return key;
}

std::string stack_key(const Profile& p, const Sample& s) {
  std::string key;
  for (uint64_t id : s.location_ids) key += location_key(p, p.locations.at(id - 1)) + '\n';
  return key;
}

// The stack and every label, sorted: profile.Merge's sample key.
std::string full_key(const Profile& p, const Sample& s) {
  std::vector<std::string> labels;
  for (const profile::Label& l : s.labels) {
    labels.push_back(l.key + '\0' + l.str + '\0' + std::to_string(l.num) + '\0' + l.num_unit);
  }
  std::sort(labels.begin(), labels.end());
  std::string key = stack_key(p, s);
  for (const std::string& l : labels) key += l + '\1';
  return key;
}

// Brings locations (with their functions and mappings) of `from` into `to`,
// reusing what `to` already has.
class Importer {
 public:
  Importer(const Profile& from, Profile& to) : from_(from), to_(to) {
    for (const Location& loc : to_.locations) locations_.emplace(location_key(to_, loc), loc.id);
    for (const Function& f : to_.functions) functions_.emplace(function_key(f), f.id);
    for (const Mapping& m : to_.mappings) mappings_.emplace(mapping_key(m), m.id);
  }

  uint64_t location(uint64_t from_id) {
    const Location& src = from_.locations.at(from_id - 1);
    auto [it, inserted] = locations_.try_emplace(location_key(from_, src), 0);
    if (!inserted) return it->second;
    Location loc;
    loc.id = to_.locations.size() + 1;
    loc.address = src.address;
    loc.mapping_id = src.mapping_id == 0 ? 0 : mapping(src.mapping_id);
    for (const profile::Line& line : src.lines) {
      loc.lines.push_back({function(line.function_id), line.line});
    }
    it->second = loc.id;
    to_.locations.push_back(std::move(loc));
    return it->second;
  }

 private:
  static std::string function_key(const Function& f) {
    return f.name + '\0' + f.system_name + '\0' + f.filename + '\0' + std::to_string(f.start_line);
  }
  static std::string mapping_key(const Mapping& m) {
    return std::to_string(m.memory_start) + '\0' + m.filename;
  }

  uint64_t function(uint64_t from_id) {
    return intern(from_.functions, &to_.functions, &functions_, from_id, function_key);
  }

  uint64_t mapping(uint64_t from_id) {
    return intern(from_.mappings, &to_.mappings, &mappings_, from_id, mapping_key);
  }

  // The id in `to` of the entry equal (by `key`) to `from[from_id - 1]`,
  // copied in with the next id on first use.
  template <class T, class Key>
  static uint64_t intern(const std::vector<T>& from, std::vector<T>* to,
                         std::unordered_map<std::string, uint64_t>* ids, uint64_t from_id,
                         Key key) {
    const T& src = from.at(from_id - 1);
    auto [it, inserted] = ids->try_emplace(key(src), 0);
    if (inserted) {
      T copy = src;
      copy.id = to->size() + 1;
      it->second = copy.id;
      to->push_back(std::move(copy));
    }
    return it->second;
  }

  const Profile& from_;
  Profile& to_;
  std::unordered_map<std::string, uint64_t> locations_;
  std::unordered_map<std::string, uint64_t> functions_;
  std::unordered_map<std::string, uint64_t> mappings_;
};

// Drops locations and functions no sample refers to and renumbers the
// rest from 1, as profile.Merge's compaction does. Mappings stay: the
// first must remain the main executable.
void compact(Profile& p) {
  std::vector<uint64_t> location_id(p.locations.size() + 1, 0);
  for (const Sample& s : p.samples) {
    for (uint64_t id : s.location_ids) location_id[id] = 1;
  }
  std::vector<Location> locations;
  std::vector<uint64_t> function_id(p.functions.size() + 1, 0);
  for (Location& loc : p.locations) {
    if (location_id[loc.id] == 0) continue;
    location_id[loc.id] = locations.size() + 1;
    loc.id = locations.size() + 1;
    for (const profile::Line& line : loc.lines) function_id[line.function_id] = 1;
    locations.push_back(std::move(loc));
  }
  std::vector<Function> functions;
  for (Function& f : p.functions) {
    if (function_id[f.id] == 0) continue;
    function_id[f.id] = functions.size() + 1;
    f.id = functions.size() + 1;
    functions.push_back(std::move(f));
  }
  for (Location& loc : locations) {
    for (profile::Line& line : loc.lines) line.function_id = function_id[line.function_id];
  }
  for (Sample& s : p.samples) {
    for (uint64_t& id : s.location_ids) id = location_id[id];
  }
  p.locations = std::move(locations);
  p.functions = std::move(functions);
}

}  // namespace

profile::Profile delta_heap(const Profile& earlier, const Profile& later) {
  Profile out = later;
  std::unordered_map<std::string, size_t> by_key;
  std::unordered_map<std::string, std::vector<size_t>> by_stack;
  for (size_t i = 0; i < out.samples.size(); ++i) {
    by_key.emplace(full_key(out, out.samples[i]), i);
    by_stack[stack_key(out, out.samples[i])].push_back(i);
  }
  std::unordered_map<std::string, int> earlier_per_stack;
  for (const Sample& s : earlier.samples) ++earlier_per_stack[stack_key(earlier, s)];

  Importer importer(earlier, out);
  for (const Sample& s : earlier.samples) {
    Sample* match = nullptr;
    if (auto it = by_key.find(full_key(earlier, s)); it != by_key.end()) {
      match = &out.samples[it->second];
    } else {
      const std::string stack = stack_key(earlier, s);
      auto same = by_stack.find(stack);
      if (same != by_stack.end() && same->second.size() == 1 && earlier_per_stack[stack] == 1) {
        match = &out.samples[same->second[0]];
      }
    }
    if (match != nullptr && match->values.size() == s.values.size()) {
      for (size_t v = 0; v < s.values.size(); ++v) match->values[v] -= s.values[v];
      continue;
    }
    Sample negated = s;
    for (int64_t& v : negated.values) v = -v;
    for (uint64_t& id : negated.location_ids) id = importer.location(id);
    out.samples.push_back(std::move(negated));
  }

  std::erase_if(out.samples, [](const Sample& s) {
    return std::all_of(s.values.begin(), s.values.end(), [](int64_t v) { return v == 0; });
  });
  compact(out);
  out.period = std::max(earlier.period, later.period);
  if (out.default_sample_type.empty()) out.default_sample_type = earlier.default_sample_type;
  for (const std::string& c : earlier.comments) {
    if (std::find(out.comments.begin(), out.comments.end(), c) == out.comments.end()) {
      out.comments.push_back(c);
    }
  }
  out.time_nanos = later.time_nanos;
  out.duration_nanos = later.time_nanos > earlier.time_nanos && earlier.time_nanos != 0
                           ? later.time_nanos - earlier.time_nanos
                           : 0;
  return out;
}

}  // namespace cpprof::sources

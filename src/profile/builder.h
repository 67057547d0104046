// ProfileBuilder: raw stacks of addresses in, a symbolized Profile out.
//
// Interns locations by address and functions by (name, system name, file),
// gives ids from 1, and attaches each location to its mapping (with build-id).
// Not thread-safe; use one builder per profile, off any hot path.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "profile/profile.h"
#include "symbolize/symbolizer.h"

namespace cpprof::profile {

class ProfileBuilder {
 public:
  // `symbolizer` must outlive the builder.
  ProfileBuilder(symbolize::Symbolizer& symbolizer, std::vector<ValueType> sample_types,
                 ValueType period_type, int64_t period);

  // Adds one sample. `stack` is leaf first and holds the addresses to show:
  // the caller adjusts return addresses (return address minus 1) before the
  // call, so every address lies inside its call instruction. Samples with
  // equal stacks and labels are NOT merged here; the caller aggregates.
  // Throws std::invalid_argument unless there is one value per sample type
  // (pprof would reject the whole profile otherwise).
  void add_sample(std::span<const uint64_t> stack, std::span<const int64_t> values,
                  std::vector<Label> labels = {});

  // Adds a sample whose only frame is a synthetic function, e.g. "(lost samples)":
  // a location with no mapping and no address. Same rule for `values`.
  void add_synthetic_sample(std::string_view function_name, std::span<const int64_t> values);

  // Wall-clock start of the collection window and its length (Profile fields).
  void set_time(int64_t time_nanos, int64_t duration_nanos);
  // The sample type pprof shows first; unset, pprof takes the last one.
  void set_default_sample_type(std::string type);
  // A free-text line pprof prints with the profile.
  void add_comment(std::string comment);

  // Symbolizes every location and returns the finished profile. Call once.
  // The main executable's mapping comes first (pprof takes mapping[0] for the
  // binary), even when no sample touches it; the others follow in order of
  // first use, and mapping ids follow that order.
  Profile build();

 private:
  // Location id for `address`, created (with its mapping, no lines yet) on first use.
  uint64_t location_for(uint64_t address);
  // Profile mapping id for the object holding `address`; 0 if none holds it.
  uint64_t mapping_for(uint64_t address);
  // Fills Location::lines and the mappings' has_* flags from the symbolizer.
  void symbolize_locations();
  // Puts the main executable's mapping first and renumbers mappings from 1.
  void order_mappings();
  // Function id for this (name, system_name, file), created on first use
  // with `start_line` (the line where the function is declared).
  uint64_t function_for(const std::string& name, const std::string& system_name,
                        const std::string& file, int64_t start_line);

  symbolize::Symbolizer& symbolizer_;
  Profile profile_;
  std::unordered_map<uint64_t, uint64_t> location_by_address_;
  std::unordered_map<uint64_t, uint64_t> mapping_by_start_;  // symbolizer's start -> id
  std::unordered_map<std::string, uint64_t> function_by_key_;
  std::unordered_map<std::string, uint64_t> synthetic_location_by_name_;
};

}  // namespace cpprof::profile

// UI assets (HTML, JS, CSS) embedded into the library at build time from
// src/ui/assets/. Thread-safe: the data is constant.
#pragma once

#include <span>
#include <string_view>

namespace cpprof::ui {

// One embedded file.
struct Asset {
  std::string_view name;     // file name, e.g. "index.html"
  std::string_view content;  // the file's bytes
};

// Every embedded asset.
std::span<const Asset> assets();

// The asset called `name`, or an empty view if there is none.
std::string_view asset(std::string_view name);

}  // namespace cpprof::ui

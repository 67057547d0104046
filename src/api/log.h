// cpprof's own log lines: to stderr, to a file (appended), or nowhere, as
// Options::log / CPPROF_LOG say. Each line starts with "cpprof: ".
#pragma once

#include <string_view>

namespace cpprof::api {

// Writes "cpprof: <line>\n" to `destination` in one write(2) call, so lines
// from several processes sharing a file do not interleave. Thread-safe.
void log_line(std::string_view destination, std::string_view line);

}  // namespace cpprof::api

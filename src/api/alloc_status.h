// Why allocation counting does not work in this process, for the index
// page and the log.
#pragma once

#include <string>

namespace cpprof::api {

// One line; meaningful only when cpprof::alloc_counting_available() is false.
std::string alloc_counting_refusal();

}  // namespace cpprof::api

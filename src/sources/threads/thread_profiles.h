// The goroutine and threadcreate profiles of a ThreadDump, in Go's forms
// (runtime/pprof writeGoroutine / writeThreadCreate, printCountProfile):
//   - debug=0 profile.proto: sample type <name>/count, period type
//     <name>/count, period 1; one sample per distinct stack with the number
//     of threads that share it; a thread without a stack counts under the
//     synthetic frame kNoStackFrame (goroutine) or kNoCreationFrame
//     (threadcreate).
//   - debug=1 text: "<name> profile: total N", then "count @ 0x.. 0x.."
//     records, most common first, each with Go's "#" frame lines.
//   - debug=2 (goroutine only): every thread as Go prints a goroutine in a
//     traceback: "goroutine <tid> [<state>, <syscall>, name "<name>"]:",
//     then "function(...)" / "\t<file>:<line> +0x<offset>" per frame, then
//     "created by <function> in goroutine <creator tid>" and its site.
// Thread-safe as the symbolizer is; allocates.
#pragma once

#include <string>

#include "profile/profile.h"
#include "sources/threads/thread_dump.h"
#include "symbolize/symbolizer.h"

namespace cpprof::sources {

inline constexpr const char* kNoStackFrame = "(stack not captured)";
inline constexpr const char* kNoCreationFrame =
    "(created outside pthread_create, or before cpprof)";

profile::Profile goroutine_profile(const ThreadDump& dump, symbolize::Symbolizer& symbolizer);
profile::Profile threadcreate_profile(const ThreadDump& dump, symbolize::Symbolizer& symbolizer);

// debug=1 (grouped) or debug=2 (every thread) text of the goroutine profile.
std::string goroutine_text(const ThreadDump& dump, symbolize::Symbolizer& symbolizer, int debug);
// debug=1 text of the threadcreate profile.
std::string threadcreate_text(const ThreadDump& dump, symbolize::Symbolizer& symbolizer);

// One thread as debug=2 prints it (also the leak check's report).
std::string thread_traceback(const ThreadRecord& thread, symbolize::Symbolizer& symbolizer);

}  // namespace cpprof::sources

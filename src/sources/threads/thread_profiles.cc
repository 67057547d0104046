#include "sources/threads/thread_profiles.h"

#include <algorithm>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "profile/builder.h"
#include "profile/stack_text.h"
#include "profile/text_columns.h"

namespace cpprof::sources {
namespace {

using Stack = std::vector<uint64_t>;

// Threads per distinct stack, most common first (ties: by address list, as
// Go orders its keys).
std::vector<std::pair<Stack, int64_t>> count_stacks(const ThreadDump& dump, bool creation) {
  std::map<Stack, int64_t> counts;
  for (const ThreadRecord& thread : dump.threads)
    ++counts[creation ? thread.created_by : thread.stack];
  std::vector<std::pair<Stack, int64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return sorted;
}

profile::Profile count_profile(const ThreadDump& dump, symbolize::Symbolizer& symbolizer,
                               const std::string& name, bool creation) {
  profile::ProfileBuilder builder(symbolizer, {{name, "count"}}, {name, "count"}, 1);
  builder.set_time(dump.time_nanos, 0);
  for (const auto& [stack, count] : count_stacks(dump, creation)) {
    const int64_t value[] = {count};
    if (stack.empty()) {
      builder.add_synthetic_sample(creation ? kNoCreationFrame : kNoStackFrame, value);
      continue;
    }
    Stack pcs(stack.size());
    std::transform(stack.begin(), stack.end(), pcs.begin(), [](uint64_t ra) { return ra - 1; });
    builder.add_sample(pcs, value);
  }
  return builder.build();
}

std::string count_text(const ThreadDump& dump, symbolize::Symbolizer& symbolizer,
                       const std::string& name, bool creation) {
  std::string out = name + " profile: total " + std::to_string(dump.threads.size()) + '\n';
  for (const auto& [stack, count] : count_stacks(dump, creation)) {
    out += std::to_string(count) + " @";
    profile::append_address_list(&out, stack);
    out += '\n';
    if (stack.empty())
      out += std::string("#\t") + (creation ? kNoCreationFrame : kNoStackFrame) + '\n';
    profile::append_stack_record(&out, stack, symbolizer);
  }
  return profile::align_tab_columns(out);
}

std::string hex(uint64_t value) {
  std::string out;
  profile::append_hex(&out, value);
  return out;
}

// Go's traceback lines for one return address: "function(...)" and
// "\tfile:line +0xoffset" for each frame, inlined ones first.
void append_traceback_frames(std::string* out, uint64_t return_address,
                             symbolize::Symbolizer& symbolizer) {
  const uint64_t pc = return_address - 1;
  const std::vector<symbolize::Frame> frames = symbolizer.symbolize(pc);
  const uint64_t entry = frames.empty() ? 0 : symbolizer.function_start(pc);
  const std::string offset = " +" + hex(entry != 0 && entry <= pc ? pc - entry : 0);
  bool printed = false;
  for (const symbolize::Frame& frame : frames) {
    if (frame.function.empty()) continue;
    *out += frame.function + "(...)\n\t" + (frame.file.empty() ? "?" : frame.file) + ':' +
            std::to_string(frame.line) + offset + '\n';
    printed = true;
  }
  if (!printed) *out += "?(...)\n\t? pc=" + hex(pc) + '\n';
}

// The creating function Go would name: the first frame of the creation
// stack outside the C++ and C runtimes' thread machinery.
bool is_runtime_frame(const std::string& function) {
  return function.rfind("std::", 0) == 0 || function.rfind("__", 0) == 0 ||
         function.rfind("pthread_", 0) == 0 || function.rfind("thrd_", 0) == 0;
}

void append_created_by(std::string* out, const ThreadRecord& thread,
                       symbolize::Symbolizer& symbolizer) {
  for (uint64_t return_address : thread.created_by) {
    const uint64_t pc = return_address - 1;
    const std::vector<symbolize::Frame> frames = symbolizer.symbolize(pc);
    if (frames.empty() || frames.back().function.empty()) continue;
    const symbolize::Frame& frame = frames.back();  // the out-of-line function
    if (is_runtime_frame(frame.function)) continue;
    const uint64_t entry = symbolizer.function_start(pc);
    *out += "created by " + frame.function + " in goroutine " + std::to_string(thread.creator_tid) +
            "\n\t" + (frame.file.empty() ? "?" : frame.file) + ':' + std::to_string(frame.line) +
            " +" + hex(entry != 0 && entry <= pc ? pc - entry : 0) + '\n';
    return;
  }
}

}  // namespace

profile::Profile goroutine_profile(const ThreadDump& dump, symbolize::Symbolizer& symbolizer) {
  return count_profile(dump, symbolizer, "goroutine", /*creation=*/false);
}

profile::Profile threadcreate_profile(const ThreadDump& dump, symbolize::Symbolizer& symbolizer) {
  return count_profile(dump, symbolizer, "threadcreate", /*creation=*/true);
}

std::string goroutine_text(const ThreadDump& dump, symbolize::Symbolizer& symbolizer, int debug) {
  if (debug == 1) return count_text(dump, symbolizer, "goroutine", /*creation=*/false);
  std::string out;
  for (const ThreadRecord& thread : dump.threads) {
    if (!out.empty()) out += '\n';
    out += thread_traceback(thread, symbolizer);
  }
  return out;
}

std::string threadcreate_text(const ThreadDump& dump, symbolize::Symbolizer& symbolizer) {
  return count_text(dump, symbolizer, "threadcreate", /*creation=*/true);
}

std::string thread_traceback(const ThreadRecord& thread, symbolize::Symbolizer& symbolizer) {
  std::string out =
      "goroutine " + std::to_string(thread.tid) + " [" + thread_state_name(thread.state);
  if (thread.syscall >= 0) out += ", " + syscall_name(thread.syscall);
  out += ", name \"" + thread.name + "\"]:\n";
  if (!thread.note.empty()) out += "# " + thread.note + '\n';
  for (uint64_t return_address : thread.stack) {
    append_traceback_frames(&out, return_address, symbolizer);
  }
  append_created_by(&out, thread, symbolizer);
  return out;
}

}  // namespace cpprof::sources

#include "cpprof/threads.h"

#include <utility>

#include "api/runtime.h"
#include "profile/stack_text.h"
#include "sources/threads/thread_dump.h"
#include "sources/threads/thread_profiles.h"

namespace cpprof {
namespace {

std::vector<StackFrame> symbolize_stack(const std::vector<uint64_t>& return_addresses,
                                        symbolize::Symbolizer& symbolizer) {
  std::vector<StackFrame> out;
  for (uint64_t return_address : return_addresses) {
    const uint64_t pc = return_address - 1;
    std::vector<symbolize::Frame> frames = symbolizer.symbolize(pc);
    if (frames.empty()) out.push_back({"", "", 0, pc});
    for (symbolize::Frame& frame : frames) {
      out.push_back({std::move(frame.function), std::move(frame.file), frame.line, pc});
    }
  }
  return out;
}

std::string describe_creation(const std::vector<StackFrame>& frames, int creator_tid) {
  if (frames.empty()) return "";
  std::string out = "creation stack (thread " + std::to_string(creator_tid) + "):\n";
  for (const StackFrame& frame : frames) {
    out += "\t" + (frame.function.empty() ? std::string("?") : frame.function);
    if (!frame.file.empty()) out += " " + frame.file + ":" + std::to_string(frame.line);
    if (frame.function.empty()) {
      out += " pc=";
      profile::append_hex(&out, frame.address);
    }
    out += "\n";
  }
  return out;
}

}  // namespace

std::vector<ThreadInfo> threads() {
  symbolize::Symbolizer& symbolizer = api::process_symbolizer();
  sources::ThreadDump dump = sources::dump_threads();
  std::vector<ThreadInfo> out;
  out.reserve(dump.threads.size());
  for (sources::ThreadRecord& record : dump.threads) {
    ThreadInfo info;
    info.tid = record.tid;
    info.name = record.name;
    info.state = sources::thread_state_name(record.state);
    if (record.syscall >= 0) info.syscall = sources::syscall_name(record.syscall);
    info.note = record.note;
    info.stack = symbolize_stack(record.stack, symbolizer);
    info.creation_stack = symbolize_stack(record.created_by, symbolizer);
    info.creator_tid = record.creator_tid;
    info.description = sources::thread_traceback(record, symbolizer) +
                       describe_creation(info.creation_stack, info.creator_tid);
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<int> thread_ids() {
  sources::DumpOptions options;
  options.stacks = false;
  std::vector<int> ids;
  for (const sources::ThreadRecord& record : sources::dump_threads(options).threads) {
    ids.push_back(record.tid);
  }
  return ids;
}

}  // namespace cpprof

#include "sources/threads/thread_scan.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "sources/threads/thread_dump.h"
#include "symbolize/proc_maps.h"

namespace cpprof::sources {
namespace {

std::set<int> live_tids() {
  const std::vector<int> tids = process_thread_ids();
  return std::set<int>(tids.begin(), tids.end());
}

// The stack pointer of a thread blocked in a system call: the second to last
// field of /proc/self/task/TID/syscall. 0 if the thread is running or unknown.
uint64_t blocked_stack_pointer(int tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
  std::string line;
  if (!std::getline(in, line)) return 0;
  std::istringstream fields(line);
  std::string field;
  std::string previous;
  std::string last;
  while (fields >> field) {
    previous = last;
    last = field;
  }
  if (previous.rfind("0x", 0) != 0) return 0;
  return std::strtoull(previous.c_str(), nullptr, 16);
}

// Stack bounds of a thread that did not start through our hooks: the
// main thread's is "[stack]"; for others, the mapping holding their SP.
void set_stack_bounds(capture::ThreadSlot* slot, int tid,
                      const std::vector<symbolize::MapsEntry>& maps) {
  uint64_t sp = tid == getpid() ? 0 : blocked_stack_pointer(tid);
  if (sp == 0 && tid != getpid()) return;  // running: try again at the next scan
  for (const symbolize::MapsEntry& entry : maps) {
    bool match = sp == 0 ? entry.path == "[stack]" : (sp >= entry.start && sp < entry.limit);
    if (match && entry.perms.size() >= 2 && entry.perms[1] == 'w') {
      slot->stack_lo.store(entry.start, std::memory_order_relaxed);
      slot->stack_hi.store(entry.limit, std::memory_order_release);
      return;
    }
  }
}

}  // namespace

void scan_threads(const std::function<void(capture::ThreadSlot*)>& before_release) {
  capture::ThreadTable& table = capture::thread_table();
  std::set<int> tids = live_tids();
  if (tids.empty()) return;  // /proc unavailable: change nothing

  std::set<int> hooked_tids;
  for (capture::ThreadSlot& slot : table) {
    int tid = slot.tid.load(std::memory_order_acquire);
    if (tid != 0 && slot.hooked.load(std::memory_order_acquire)) hooked_tids.insert(tid);
  }
  std::set<int> known = hooked_tids;
  for (capture::ThreadSlot& slot : table) {
    int tid = slot.tid.load(std::memory_order_acquire);
    if (tid == 0 || slot.hooked.load(std::memory_order_acquire)) continue;
    // An unhooked entry is ours to retire when its thread is gone or when
    // the thread also registered itself through our hooks.
    if (tids.count(tid) == 0 || hooked_tids.count(tid) != 0 || known.count(tid) != 0) {
      if (before_release) before_release(&slot);
      table.release(&slot);
      continue;
    }
    known.insert(tid);
  }

  std::string text;
  std::vector<symbolize::MapsEntry> maps;
  auto bound = [&](capture::ThreadSlot* slot, int tid) {
    if (maps.empty() && symbolize::read_proc_maps(&text)) maps = symbolize::parse_proc_maps(text);
    set_stack_bounds(slot, tid, maps);
  };
  for (int tid : tids) {
    if (known.count(tid) != 0) continue;
    bool created = false;
    capture::ThreadSlot* slot = table.register_thread(tid, &created);
    if (slot == nullptr) break;
    // Only a slot this scan made is ours to fill in: a thread that
    // registered itself meanwhile has recorded its own bounds.
    if (created) bound(slot, tid);
  }
  // Unhooked threads whose bounds were unknown (they were running): retry.
  for (capture::ThreadSlot& slot : table) {
    int tid = slot.tid.load(std::memory_order_acquire);
    if (tid != 0 && !slot.hooked.load(std::memory_order_acquire) &&
        slot.stack_hi.load(std::memory_order_acquire) == 0) {
      bound(&slot, tid);
    }
  }
}

}  // namespace cpprof::sources

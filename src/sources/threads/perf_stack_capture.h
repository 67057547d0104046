// Stacks of running threads without sending them anything: a sampling
// perf event (software cpu-clock, user space only) opened on each thread
// copies its user registers and the top of its user stack into a ring
// buffer the next time it runs in user space; the copy is then walked
// with the published DWARF rows. No signal is involved, so a thread that
// enters a blocking call meanwhile is not disturbed (it simply gives no
// sample). Needs kernel.perf_event_paranoid <= 2 (or CAP_PERFMON) and no
// seccomp filter against perf_event_open.
//
// Each event's descriptor is placed high in the descriptor table (as the
// CPU sampler's are: sources/cpu/perf_events.h) and closed before return.
// Not for signal handlers; allocates.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cpprof::sources {

struct PerfStack {
  int tid = 0;
  bool opened = false;           // false: no event could be opened on it (ask it otherwise)
  bool sampled = false;          // false: no sample came (the thread did not run in user space)
  std::vector<uint64_t> frames;  // the sampled PC, then return addresses
};

// Samples each of `tids` once, a few threads at a time (rings are locked
// memory, limited for unprivileged processes), waiting at most
// `timeout_ns` in all.
// Returns false (nothing sampled, `why` set) when perf events cannot be
// opened here at all.
bool capture_running_stacks(const std::vector<int>& tids, int64_t timeout_ns,
                            std::vector<PerfStack>* out, std::string* why);

}  // namespace cpprof::sources

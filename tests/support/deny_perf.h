// Making perf_event_open fail in this process, as a container's seccomp
// profile does (EPERM) or kernel.perf_event_paranoid=3 does for a process
// without CAP_PERFMON (EACCES): a seccomp filter that answers that one
// system call with an error, installed on every thread (TSYNC; threads
// started later inherit it). No libseccomp needed.
//
// Irreversible: use it in a child process (a death test, a test program).
// No gtest dependency: the test programs in tests/integration link it too.
#pragma once

namespace cpprof::test {

// Returns false (with errno set) if the kernel refused the filter.
bool deny_perf_event_open(int error);

}  // namespace cpprof::test

// The kernel's own numbers about tasks, from /proc: what migwatch's counts
// are checked against.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace migwatch::testing {

/// tids of the threads of process `pid` now (none if it is gone).
std::vector<pid_t> ThreadsOf(pid_t pid);

/// pid of the migration/<cpu> stopper thread, from /proc.
std::optional<pid_t> StopperPid(int cpu);

/// Waits until the stopper threads of `cpus` have ended their runs: each
/// asleep, and not switched in again over a few ms. Counts that a run
/// settles at its end (a stopper's affinity changes, its first move) are
/// then in place, even if the host held that CPU's vCPU back in the middle
/// of the run. False after `timeout`.
bool WaitForStoppersToSleep(const std::vector<int>& cpus, std::chrono::milliseconds timeout);

/// Runtime in ns of a task from /proc/<pid>/schedstat.
std::optional<uint64_t> SchedstatRuntimeNs(pid_t pid);

/// Resident set size of a process in bytes (0 if it is gone).
uint64_t RssBytes(pid_t pid);

}  // namespace migwatch::testing

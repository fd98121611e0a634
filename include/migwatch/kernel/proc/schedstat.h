// /proc/<pid>/schedstat and /proc/<pid>/task/<tid>/schedstat.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace migwatch {

/// The three numbers of a schedstat file.
struct SchedStat {
  /// Time spent running on a CPU, in nanoseconds (se.sum_exec_runtime).
  std::uint64_t run_ns = 0;
  /// Time spent runnable but waiting on a run queue, in nanoseconds
  /// (sched_info.run_delay). Kept wherever the kernel has CONFIG_SCHED_INFO,
  /// without the schedstats boot flag; older kernels built without
  /// CONFIG_SCHEDSTATS keep it only while delay accounting is on, and show
  /// "0 0 0" otherwise.
  std::uint64_t run_queue_wait_ns = 0;
  /// Number of times the task was given a CPU.
  std::uint64_t timeslices = 0;

  friend bool operator==(const SchedStat&, const SchedStat&) = default;
};

/// Parses "<run_ns> <wait_ns> <timeslices>\n". Exactly three unsigned decimal
/// numbers separated by whitespace; anything else yields std::nullopt.
/// Pure; thread-safe.
std::optional<SchedStat> ParseSchedStat(std::string_view contents);

/// Reads /proc/<pid>/schedstat: for a process it describes the thread group
/// leader only, not the sum of its threads. Thread-safe.
std::optional<SchedStat> ReadProcessSchedStat(pid_t pid);

/// Reads /proc/<pid>/task/<tid>/schedstat. Thread-safe.
std::optional<SchedStat> ReadTaskSchedStat(pid_t pid, pid_t tid);

}  // namespace migwatch

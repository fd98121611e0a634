// /proc/<pid>/task/<tid>/sched: the scheduler's per-task debug counters.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace migwatch {

/// The fields of a sched file that migwatch uses.
struct TaskSched {
  /// se.nr_migrations: how many times the kernel moved the task to another
  /// CPU. The exact per-task count that the BPF counters are tested against.
  std::uint64_t nr_migrations = 0;
  /// se.sum_exec_runtime: CPU time the task has consumed, in nanoseconds.
  std::uint64_t sum_exec_runtime_ns = 0;

  friend bool operator==(const TaskSched&, const TaskSched&) = default;
};

/// Parses the contents of a sched file. Both fields are required; returns
/// std::nullopt if either is missing or malformed, or if the row of dashes
/// that ends the header is missing: lines before it are ignored, because the
/// header repeats the task's comm, which the task chooses itself.
/// Pure; thread-safe.
std::optional<TaskSched> ParseSched(std::string_view contents);

/// Converts a duration as the sched file prints it, milliseconds with exactly
/// six decimals ("1234.567890"), to nanoseconds without rounding. Returns
/// std::nullopt for any other shape (no dot, another number of decimals,
/// a sign, a value that does not fit in 64 bits). Pure; thread-safe.
std::optional<std::uint64_t> ParseSchedMillisecondsToNs(std::string_view value);

/// Reads and parses /proc/<pid>/task/<tid>/sched. Thread-safe.
std::optional<TaskSched> ReadTaskSched(pid_t pid, pid_t tid);

/// se.nr_migrations of thread `tid` of process `pid`, or std::nullopt if the
/// file cannot be read or parsed. Thread-safe.
std::optional<std::uint64_t> ReadNrMigrations(pid_t pid, pid_t tid);

/// Sum of se.nr_migrations over the live threads of process `pid`: the
/// kernel's own count of the process's migrations, as long as none of its
/// threads has exited. A thread that ends while it is read is left out;
/// std::nullopt if no thread could be read (the process is gone).
std::optional<std::uint64_t> ReadLiveThreadMigrations(pid_t pid);

}  // namespace migwatch

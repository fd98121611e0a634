// The kernel's own record of each migration/N run, from ftrace: which task
// the run took the CPU from and what the scheduler charged it, read through
// tracefs, apart from migwatch's BPF programs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace migwatch::testing {

/// One finished on-CPU interval of a stopper thread.
struct StopperRun {
  int cpu = -1;
  /// The task it took the CPU from while that task could still run
  /// (prev_state R or R+ at the switch in); 0 if none (idle, or a task that
  /// blocked).
  pid_t preempted_tid = 0;
  /// Its sched_stat_runtime increments: se.sum_exec_runtime over the run.
  uint64_t runtime_ns = 0;
};

/// sched_switch and sched_stat_runtime of the stopper threads of some CPUs,
/// traced into a private ftrace instance (other users of tracefs keep
/// theirs) that is removed again with the object.
class StopperTrace {
 public:
  /// Starts tracing the stoppers of `cpus`; nullptr and `error` if tracefs
  /// or a stopper thread cannot be found.
  static std::unique_ptr<StopperTrace> Start(const std::vector<int>& cpus, std::string* error);
  ~StopperTrace();
  StopperTrace(const StopperTrace&) = delete;
  StopperTrace& operator=(const StopperTrace&) = delete;

  /// Writes `text` into the trace, between the events around it.
  void Mark(const std::string& text);
  /// Stops tracing and returns the runs that began after the mark `begin`
  /// and ended before the mark `end`; nullopt and `error` if the trace lost
  /// events or lacks a mark.
  std::optional<std::vector<StopperRun>> Runs(const std::string& begin, const std::string& end, std::string* error);

 private:
  StopperTrace(std::string dir, std::map<int, pid_t> stoppers, bool mounted)
      : dir_(std::move(dir)), stoppers_(std::move(stoppers)), mounted_(mounted) {}
  bool Write(const std::string& file, const std::string& value);

  std::string dir_;                ///< the instance's directory
  std::map<int, pid_t> stoppers_;  ///< CPU -> pid of its migration/N
  bool mounted_;                   ///< tracefs mounted by Start(), unmounted at the end
};

}  // namespace migwatch::testing

// Reading the BPF maps into plain values: the only place that knows the
// per-CPU layout of map values.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "migwatch/abi.h"

namespace migwatch {

class Probes;

/// Host-wide counters at one instant, summed over the CPUs that counted them.
struct CounterSnapshot {
  mw_host_stats host{};
  std::vector<mw_cpu_moves> cpu_moves;       ///< indexed by CPU
  unsigned nr_nodes = 1;
  std::vector<uint64_t> node_moves;          ///< [from * nr_nodes + to]
  std::vector<mw_stopper_stats> stopper;     ///< indexed by the stopper's CPU
};

/// One thread's counters, summed over CPUs.
struct ThreadCounts {
  uint32_t tgid = 0;
  std::string comm;
  uint64_t migrations[MW_REASON_COUNT] = {};
  uint64_t total() const;
};

/// One process's counters, summed over CPUs.
struct ProcessCounts {
  std::string comm;  ///< thread-group leader's comm
  uint32_t flags = 0;
  uint64_t migrations[MW_REASON_COUNT] = {};
  uint64_t stopper_moved_ns = 0;
  uint64_t stopper_requested_ns = 0;
  uint64_t stopper_requested_runs = 0;
  uint64_t affinity_changes = 0;
  uint64_t total_migrations() const;
};

/// Reads the host, CPU, node and stopper counters. Never throws; a map that
/// cannot be read leaves its part zero and returns false.
bool ReadCounters(const Probes& probes, CounterSnapshot* out);

/// One thread, or false if it is not (or no longer) tracked.
bool ReadThread(const Probes& probes, uint32_t tid, ThreadCounts* out);

/// The tgids of every tracked process, without their values.
std::vector<uint32_t> ListProcesses(const Probes& probes);

/// Every tracked process, keyed by tgid (MW_KERNEL_TGID and
/// MW_OVERFLOW_TGID included).
std::unordered_map<uint32_t, ProcessCounts> ReadProcesses(const Probes& probes);

/// Removes a process entry once its final counts have been taken.
void ForgetProcess(const Probes& probes, uint32_t tgid);

}  // namespace migwatch

// Reading the BPF maps into plain values: the only place that knows the
// layout of map values and how maps are read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "migwatch/abi.h"

// Process keys order and compare by (tgid, start time). The key is a C type
// of the global namespace, where lookup finds these.
bool operator<(const mw_process_key& a, const mw_process_key& b);
bool operator==(const mw_process_key& a, const mw_process_key& b);

namespace migwatch {

class Probes;

/// Host-wide counters at one instant.
struct CounterSnapshot {
  mw_cpu_counters host{};                ///< summed over CPUs
  std::vector<mw_cpu_counters> cpus;     ///< as each CPU counted; indexed by CPU
  std::vector<mw_cpu_moves> cpu_moves;   ///< indexed by CPU
  unsigned nr_nodes = 1;
  std::vector<uint64_t> node_moves;      ///< [from * nr_nodes + to]
};

/// One process as read: its entry in the process map, and where the task
/// iterator runs, the migrations of its live threads. `stats.migrations`
/// holds every reason, wakeups included, once the reading is complete
/// (CountWakeups).
struct ProcessEntry {
  mw_process_key key{};
  mw_process_stats stats{};      ///< zero where the process has no entry yet
  uint64_t live_migrations = 0;  ///< sum of its live threads' se.nr_migrations
};

/// Migrations of `stats` of every reason but wakeup.
uint64_t OtherMigrations(const mw_process_stats& stats);

/// A process's counts when the session started: what its threads had made
/// before (the kernel counts from each thread's start) and what the programs
/// had counted of its other reasons by then.
struct ProcessBaseline {
  uint64_t total = 0;
  uint64_t others = 0;
};

/// Where wakeups are not counted per process by the programs (abi.h): a
/// process's wakeups since the baseline are its total (live threads, plus
/// exited ones as of `exited_migrations`) minus its other reasons, both
/// since the baseline. Reading the exited totals first, the live threads
/// next and the reasons last, the result can fall short of the truth while
/// threads move or exit, never exceed it.
void CountWakeups(ProcessEntry* entry, uint64_t exited_migrations, const ProcessBaseline& baseline);

uint64_t TotalMigrations(const mw_process_stats& stats);
std::string CommOf(const char (&comm)[MW_COMM_LEN]);

/// Reads the CPU, node and stopper counters, each map with one system call.
/// Never throws; a map that cannot be read leaves its part zero and returns
/// false.
bool ReadCounters(const Probes& probes, CounterSnapshot* out);

/// Every entry of the process map (batched reads). Returns false if the map
/// could not be read; `out` then holds what was read.
bool ReadProcessEntries(const Probes& probes, std::vector<ProcessEntry>* out);

/// One entry; false if it is not in the map.
bool ReadProcessEntry(const Probes& probes, const mw_process_key& key, mw_process_stats* out);

/// Removes an entry once its final counts have been taken.
void DeleteProcessEntry(const Probes& probes, const mw_process_key& key);

}  // namespace migwatch

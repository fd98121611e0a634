// Reading the BPF maps into plain values: the only place that knows the
// layout of map values and how maps are read.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "migwatch/abi.h"

// Process keys order and compare by (tgid, start time). The key is a C type
// of the global namespace, where lookup finds these.
bool operator<(const mw_process_key& a, const mw_process_key& b);
bool operator==(const mw_process_key& a, const mw_process_key& b);

struct ring_buffer;

namespace migwatch {

class Probes;

/// Host-wide counters at one instant.
struct CounterSnapshot {
  mw_cpu_counters host{};                ///< summed over CPUs
  std::vector<mw_cpu_counters> cpus;     ///< as each CPU counted; indexed by CPU
  std::vector<mw_cpu_moves> cpu_moves;   ///< indexed by CPU
  std::vector<bool> online;              ///< indexed by CPU: online when read
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
  /// Moves of other reasons than wakeup that the entry's counts may lack
  /// for this reading (AddUnsettled): subtracted from the wakeups.
  uint64_t pending_others = 0;
  /// Its threads' se.nr_migrations as read: live ones, plus the exited
  /// ones' total (CountWakeups).
  uint64_t kernel_migrations = 0;
};

/// Whether a CPU gets per-CPU series: online, or it has counted something
/// (a CPU that went offline keeps its series). Hosts often report many more
/// possible CPUs than they ever bring online.
bool CpuShown(const CounterSnapshot& s, size_t cpu);

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
/// next, then the reasons with the moves pending as of the same moment
/// (ReadPendingMoves on both sides of the process map), the result can fall
/// short of the truth while threads move or exit, never exceed it, and is
/// exact once they stop.
void CountWakeups(ProcessEntry* entry, uint64_t exited_migrations, const ProcessBaseline& baseline);

/// A process's baseline from a reading with none (CountWakeups with an
/// empty baseline): everything the kernel and the programs had counted by
/// then, what was still unsettled included. `live_after` is its live
/// threads' migrations read again after the process map: a move made
/// between the two readings of the threads is in the total, whether the
/// map had it or not, so the wakeups derived later can fall short, never
/// exceed. Exact when `live_after` equals the reading's live migrations and
/// nothing left `unsettled` during it (no `pending_others`); a session
/// reads again until then.
ProcessBaseline BaselineOf(const ProcessEntry& entry, uint64_t live_after);

uint64_t TotalMigrations(const mw_process_stats& stats);
std::string CommOf(const char (&comm)[MW_COMM_LEN]);

/// Reads the CPU, node and stopper counters, each map with one system call.
/// Never throws; a map that cannot be read leaves its part zero and returns
/// false.
bool ReadCounters(const Probes& probes, CounterSnapshot* out);

/// Every entry of the process map (batched reads). Returns false if the map
/// could not be read; `out` then holds what was read.
bool ReadProcessEntries(const Probes& probes, std::vector<ProcessEntry>* out);

/// What the programs have counted and not yet added to the process entries:
/// the moves deferred to the end of a stopper run (abi.h, mw_deferred_move)
/// and the charges the CPUs hold (abi.h, mw_pending_charges).
struct PendingMoves {
  /// Per process, summed over CPUs: held charges and deferred moves.
  std::map<mw_process_key, mw_process_stats> unsettled;
  /// Per process: moves of other reasons than wakeup that left `unsettled`
  /// between two readings (AddUnsettled).
  std::map<mw_process_key, uint64_t> others;
  std::vector<uint64_t> changes;  ///< per CPU: deferrals, settlings and flushes of held charges so far
};
/// Adds one CPU's stopper request: its change counters, and its pending move
/// and held charges unless they are on their way to the process map, which
/// may have them already (abi.h, MW_SETTLING): left out, they are missed by
/// this reading, never counted twice.
void AddPending(const mw_stopper_request& request, PendingMoves* out);

/// Read before and after the process map: where `changes` is the same, the
/// two readings saw the same pending moves and held migrations (CountWakeups).
bool ReadPendingMoves(const Probes& probes, PendingMoves* out);

/// Adds the counters of `from` (not its name and flags) to `to`.
void AddCounters(mw_process_stats* to, const mw_process_stats& from);

/// Adds what was unsettled after the process map was read to its entries
/// (creating those not read): a count that reached its entry in between is
/// missed until the next reading, never counted twice. Migrations that
/// left `unsettled` in between count in `before->others`, so that the
/// wakeups derived from it fall short rather than exceed.
void AddUnsettled(const PendingMoves& after, PendingMoves* before, std::vector<ProcessEntry>* entries);

/// One entry; false if it is not in the map.
bool ReadProcessEntry(const Probes& probes, const mw_process_key& key, mw_process_stats* out);

/// Removes entries once their final counts have been taken.
void DeleteProcessEntries(const Probes& probes, const std::set<mw_process_key>& keys);

/// Adds threads to, and removes them from, those whose exit the programs
/// report with the thread's final run time (watched_tids). Returns the
/// threads that could not be added, with why.
std::vector<std::pair<uint32_t, std::string>> UpdateWatchedThreads(const Probes& probes,
                                                                   const std::vector<uint32_t>& watch,
                                                                   const std::vector<uint32_t>& unwatch);

/// The task event ring buffer (abi.h, mw_task_event), read into a callback.
class TaskEventReader {
 public:
  using Deliver = std::function<void(const mw_task_event&)>;
  /// Returns nullptr and sets `error` if the ring buffer cannot be opened.
  static std::unique_ptr<TaskEventReader> Open(const Probes& probes, Deliver deliver, std::string* error);
  ~TaskEventReader();
  TaskEventReader(const TaskEventReader&) = delete;
  TaskEventReader& operator=(const TaskEventReader&) = delete;
  /// Delivers every record waiting; never blocks. Returns the number
  /// delivered, or a negative errno.
  int Consume();

 private:
  TaskEventReader() = default;
  static int OnRecord(void* ctx, void* data, size_t size);
  Deliver deliver_;
  ring_buffer* buffer_ = nullptr;
};

}  // namespace migwatch

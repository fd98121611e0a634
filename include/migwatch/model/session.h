// What every command that watches the kernel starts with: the attached
// probes, attribution, QEMU thread tracking and the task event stream, and
// the one way to read them all.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "migwatch/model/attribution.h"
#include "migwatch/kernel/probes.h"
#include "migwatch/model/qemu_tracker.h"
#include "migwatch/kernel/maps.h"

namespace migwatch {

/// Options of a session, fixed once it is open.
struct SessionOptions {
  ProbeOptions probes;
  size_t label_cap = 20;      ///< process and requester label values
  size_t vm_label_cap = 256;  ///< VM label values: a host runs hundreds at most
};

/// Everything migwatch knows at one instant.
struct Snapshot {
  CounterSnapshot counters;
  AttributionTotals attribution;
  QemuState qemu;
  std::vector<ProgramMisses> misses;
};

/// Owns the probes and everything that reads them. Destruction detaches
/// the programs. Thread-safe: every method takes the session's lock.
class Session {
 public:
  /// Loads and attaches the probes (logging the mode each one got) and scans
  /// /proc for running QEMU migration threads. Returns nullptr and sets
  /// `error` on failure; nothing stays attached then.
  static std::unique_ptr<Session> Open(const SessionOptions& options, std::string* error);
  ~Session();

  const Probes& probes() const { return *probes_; }

  /// Reads everything, in the order that loses nothing: the maps, then the
  /// task records written before that read (their name changes split the
  /// growth they carry), then the QEMU threads (the schedstat of each vCPU
  /// thread: a thread that exits keeps the run delay read at the snapshot
  /// before, what it waited after that is not counted). Writes nothing to the
  /// kernel: a process that is gone stays in the process map, counted as
  /// it was, until the next Sweep().
  Snapshot TakeSnapshot();
  /// Folds the process map and removes the entries of processes that are
  /// gone, after their final counts are taken, so that the map does not
  /// fill up with the dead; and applies the QEMU tracker's thread watches.
  /// Every long-running command calls it on its own schedule.
  void Sweep();
  /// Every process as read now, every reason counted (no folding, nothing
  /// removed): for self-checks and tests.
  std::vector<ProcessEntry> ReadProcesses();
  /// The newest process with this tgid, if it has migrated.
  std::optional<ProcessEntry> ReadProcess(uint32_t tgid);
  /// Delivers the task records waiting in the ring buffer, and applies the
  /// thread watches they lead to; never blocks. Returns false on a read
  /// error.
  bool ConsumeEvents();
  /// Who the process with this tgid is (for trace records).
  ProcessIdentity IdentityOf(uint32_t tgid, const std::string& comm);
  /// Which records go to the trace ring buffer: MW_TRACE_BIT()s, 0 for none.
  void SetTracing(uint32_t records);

 private:
  Session() = default;
  void OnTaskEvent(const mw_task_event& event);
  bool DeliverEventsLocked();
  void ReadProcessesLocked(std::vector<ProcessEntry>* entries, std::set<mw_process_key>* gone,
                           CounterSnapshot* counters);
  void FoldProcessesLocked(CounterSnapshot* counters, bool remove_gone);
  void TakeBaselineLocked();
  void ApplyWatchChangesLocked();

  std::mutex mutex_;
  std::unique_ptr<Probes> probes_;
  ProcDirectory directory_;
  std::unique_ptr<Attribution> attribution_;
  std::unique_ptr<QemuTracker> qemu_;
  std::unique_ptr<TaskEventReader> task_events_;
  // Per process: its counts when the session started.
  std::map<mw_process_key, ProcessBaseline> baseline_;
};

}  // namespace migwatch

// Turning per-process kernel counters into bounded Prometheus labels:
// processes, requesters of stopper work, and QEMU VMs.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "migwatch/abi.h"
#include "migwatch/model/label_folder.h"
#include "migwatch/kernel/maps.h"
#include "migwatch/model/qemu_tracker.h"

namespace migwatch {

using ReasonCounts = std::array<uint64_t, MW_REASON_COUNT>;

/// Cumulative totals per label value. Every value only ever grows, whatever
/// happens to the processes behind it (exit, exec, pid reuse), so each one is
/// a valid Prometheus counter.
struct AttributionTotals {
  std::map<std::string, ReasonCounts> process_migrations;
  std::map<std::string, uint64_t> process_stopper_ns;  ///< stopper time moving its threads
  /// stopper time of runs that preempted one of its threads
  std::map<std::string, uint64_t> process_stopper_preempted_ns;
  std::map<std::string, uint64_t> requester_stopper_ns;
  std::map<std::string, uint64_t> requester_stopper_runs;
  std::map<std::string, uint64_t> affinity_changes;
  std::map<std::string, ReasonCounts> vm_migrations;
  std::map<std::string, uint64_t> vm_stopper_ns;
  std::map<std::string, uint64_t> vm_stopper_preempted_ns;
  /// Live vCPU threads: 0 once a VM's threads are gone, until its label
  /// ends with its other series.
  std::map<std::string, uint64_t> vm_vcpus;
  /// Run delay of the VM's vCPU threads, those that exited included (up to
  /// their last reading).
  std::map<std::string, uint64_t> vm_vcpu_delay_ns;
  size_t folded_processes = 0;  ///< distinct process names folded into "other"
  size_t folded_requesters = 0;
  size_t folded_vms = 0;
};

/// Who a process is.
struct ProcessIdentity {
  std::string name;  ///< leader comm; kernel threads without their /N suffix
  /// If this is a QEMU process its VM: the -name guest, else the -uuid,
  /// else "pid-<PID>"; empty for other processes.
  std::string vm;
  bool incoming = false;  ///< QEMU started with -incoming
};

/// Where identities come from: /proc in the daemon (ProcDirectory), a table
/// in tests.
class ProcessDirectory {
 public:
  virtual ~ProcessDirectory() = default;
  /// Its identity now. `comm` and `flags` (from the BPF entry or record)
  /// name a process that is gone.
  virtual ProcessIdentity Resolve(const mw_process_key& key, const std::string& comm, uint32_t flags) = 0;
  /// The identity of whichever process has this pid now (`comm` if none).
  virtual ProcessIdentity ResolvePid(uint32_t tgid, const std::string& comm) = 0;
};

/// The processes in /proc, matched by start time so that a reused pid is
/// never taken for the process that had it before. Thread-safe.
class ProcDirectory : public ProcessDirectory {
 public:
  ProcessIdentity Resolve(const mw_process_key& key, const std::string& comm, uint32_t flags) override;
  ProcessIdentity ResolvePid(uint32_t tgid, const std::string& comm) override;
};

/// The identity of a process from its name alone: kernel threads lose
/// their /N suffix; `kernel` and `other` for the requester and overflow keys.
ProcessIdentity IdentityFromComm(const mw_process_key& key, const std::string& comm, uint32_t flags);

/// A process changed its name (an exec, or a rename of its leader), with
/// its counts at that instant, from a task record.
struct NameChange {
  mw_process_key key{};
  std::string comm;  ///< the new name
  bool exec = false;
  uint32_t flags = 0;
  mw_process_stats counts{};
};

/// Folds readings of the process map into label totals.
///
/// Each Fold() adds what grew since the last reading to the label of each
/// process (per label dimension at most `label_cap` values, `vm_label_cap`
/// for VMs, get their own label; see LabelFolder; Relabel() moves the process
/// and requester labels to the busiest names). Growth that came before a name
/// change goes to the old name and the rest to the new one, by the counts the
/// change carries, however late the change is delivered. No system call
/// except through the ProcessDirectory. Not thread-safe.
class Attribution {
 public:
  Attribution(ProcessDirectory& directory, size_t label_cap, size_t vm_label_cap);

  /// A name change, to be applied by the Fold() whose reading comes after it.
  void AddNameChange(NameChange change);
  /// Folds one reading: every entry of the process map, and those whose
  /// process has ended (their values are final; they are forgotten after).
  /// Every name change from before the reading must have been added.
  void Fold(const std::vector<ProcessEntry>& entries, const std::set<mw_process_key>& gone,
            LabelFolder::Clock::time_point now = LabelFolder::Clock::now());

  /// Folds one reading of every live vCPU thread (QemuTracker::ReadVcpus):
  /// each VM's live vCPU count, and the growth of each thread's run delay
  /// since its last reading charged to its VM. A VM with live vCPU threads
  /// is active, so its label keeps its slot while it runs. A thread missing
  /// from the reading has exited and keeps what it was charged.
  void FoldVcpus(const std::vector<VcpuReading>& readings,
                 LabelFolder::Clock::time_point now = LabelFolder::Clock::now());

  /// Gives the process and requester labels to the busiest names
  /// (LabelFolder::ReassignSlots, by migrations and stopper time), and ends
  /// the series of every value that lost its label since the last call: a
  /// value that loses its label keeps its series, no longer growing, until
  /// this call. Call it right after the totals are exported, so that every
  /// series is exported with its final value before it ends, and "recent"
  /// activity means that of the last few exports. Without it, labels change
  /// hands only when idle (LabelFolder::Label), and a value that lost its
  /// label keeps its series and gets no label again.
  void Relabel(LabelFolder::Clock::time_point now = LabelFolder::Clock::now());

  const AttributionTotals& totals() const { return totals_; }
  /// The label a VM name gets under the VM label cap (shared by every
  /// per-VM metric so that they fold alike).
  std::string VmLabel(const std::string& vm);
  /// The identity of the newest process with this tgid, resolving it if
  /// it has not been seen (for trace records, which carry no start time).
  ProcessIdentity IdentityOf(uint32_t tgid, const std::string& comm);

 private:
  struct Tracked {
    ProcessIdentity identity;
    uint32_t flags = 0;
    mw_process_stats last{};
  };
  void Charge(const ProcessIdentity& identity, const mw_process_stats& from, const mw_process_stats& to,
              LabelFolder::Clock::time_point now);

  ProcessDirectory& directory_;
  LabelFolder process_labels_;
  LabelFolder requester_labels_;
  LabelFolder vm_labels_;
  std::map<mw_process_key, Tracked> tracked_;
  std::unordered_map<uint32_t, mw_process_key> newest_by_tgid_;
  std::map<mw_process_key, std::deque<NameChange>> pending_;
  // Per vCPU thread (tgid, tid): its run delay at the last reading, kept
  // for a few readings after the thread is gone, until its exit record
  // comes with the final delay (QemuTracker::kExitWaitReadings).
  struct VcpuDelayRead {
    uint64_t delay_ns = 0;
    int readings_missed = 0;
  };
  std::map<std::pair<uint32_t, uint32_t>, VcpuDelayRead> vcpu_delay_read_;
  AttributionTotals totals_;
};

}  // namespace migwatch

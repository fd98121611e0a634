// Turning per-process kernel counters into bounded Prometheus labels:
// processes, requesters of stopper work, and QEMU VMs.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "migwatch/abi.h"
#include "migwatch/proc/label_folder.h"
#include "migwatch/snapshot.h"

namespace migwatch {

class Probes;

using ReasonCounts = std::array<uint64_t, MW_REASON_COUNT>;

/// Cumulative totals per label value. Every value only ever grows, whatever
/// happens to the processes behind it (exit, exec, pid reuse), so each one is
/// a valid Prometheus counter.
struct AttributionTotals {
  std::map<std::string, ReasonCounts> process_migrations;
  std::map<std::string, uint64_t> process_stopper_ns;  ///< stopper time moving its threads
  std::map<std::string, uint64_t> requester_stopper_ns;
  std::map<std::string, uint64_t> requester_stopper_runs;
  std::map<std::string, uint64_t> affinity_changes;
  std::map<std::string, ReasonCounts> vm_migrations;
  std::map<std::string, uint64_t> vm_stopper_ns;
  size_t folded_processes = 0;   ///< distinct process names folded into "other"
  size_t folded_requesters = 0;
  size_t folded_vms = 0;
};

/// Who a tgid is, resolved once from /proc when first seen.
struct ProcessIdentity {
  std::string name;  ///< leader comm; kernel threads without their /N suffix
  std::string vm;    ///< VM name if this is a QEMU process, else empty
  bool incoming = false;  ///< QEMU started with -incoming
};

/// Resolves the identity of a process from /proc (its comm, kernel-thread
/// flag and, for QEMU, its command line). `fallback_comm` names a process
/// that has already exited. Thread-safe.
ProcessIdentity ResolveProcess(pid_t tgid, const std::string& fallback_comm, uint32_t flags);

/// Folds the per-process map into label totals.
///
/// Update() reads the map, adds what grew since the last Update() to the
/// label of each process (per label dimension at most `label_cap` values,
/// `vm_label_cap` for VMs, get their own label; see LabelFolder), and removes
/// the entries of processes that have exited after taking their final
/// counts. All methods are thread-safe.
class Attributor {
 public:
  Attributor(const Probes& probes, size_t label_cap, size_t vm_label_cap);

  void Update();
  AttributionTotals Totals() const;
  /// A process exec'd: who it is must be read again from /proc (its name,
  /// and whether it is QEMU now).
  void OnExec(uint32_t tgid, const std::string& comm);
  /// A process renamed its main thread (prctl, pthread_setname_np): its
  /// label follows. `comm` is the new name (the rename is traced before
  /// /proc shows it).
  void OnRename(uint32_t tgid, const std::string& comm);
  /// The label a VM name gets under the VM label cap (shared by every
  /// per-VM metric so that they fold alike).
  std::string VmLabel(const std::string& vm);
  /// The identity the attributor uses for `tgid`, resolving it if new.
  ProcessIdentity Identity(uint32_t tgid, const std::string& fallback_comm = "", uint32_t flags = 0);

 private:
  struct Tracked {
    ProcessIdentity identity;
    ProcessCounts last;
  };
  const ProcessIdentity& IdentityLocked(uint32_t tgid, const std::string& fallback_comm, uint32_t flags);
  void DropEvictedLocked();

  const Probes& probes_;
  mutable std::mutex mutex_;
  LabelFolder process_labels_;
  LabelFolder requester_labels_;
  LabelFolder vm_labels_;
  std::unordered_map<uint32_t, Tracked> tracked_;
  AttributionTotals totals_;
};

}  // namespace migwatch

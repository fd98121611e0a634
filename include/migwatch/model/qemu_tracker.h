// QEMU live-migration threads: seen when they are named, forgotten when they
// exit, with the CPU time and migrations they accumulate; and the vCPU
// threads of every VM, with the time they waited for a CPU.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "migwatch/abi.h"
#include "migwatch/kernel/proc/qemu.h"

namespace migwatch {

/// One side of a VM's live migration: running, or ended (its threads are
/// gone).
struct QemuMigrationSide {
  std::string vm;
  MigrationSide side = MigrationSide::kSource;
  bool active = false;
  double start_time_seconds = 0;  ///< unix time its first thread appeared, while active
  size_t threads = 0;             ///< live threads
};

/// What the migration threads of one VM with one name consumed, exited ones
/// included.
struct QemuThreadTotals {
  std::string vm;
  std::string thread;  ///< thread name without its channel number
  uint64_t runtime_ns = 0;
  uint64_t migrations = 0;  ///< se.nr_migrations, the kernel's own count
};

struct QemuState {
  std::vector<QemuMigrationSide> sides;  ///< every (vm, side) ever seen
  std::vector<QemuThreadTotals> threads;
};

/// One vCPU thread, as read now, or as it ended.
struct VcpuReading {
  std::string vm;  ///< VM label
  uint32_t tgid = 0;
  uint32_t tid = 0;
  /// Time the thread waited, runnable, for a CPU since it started
  /// (/proc/PID/task/TID/schedstat, or the kernel's exit record).
  uint64_t run_delay_ns = 0;
  /// The thread has exited: this is its final delay, and it is no vCPU now.
  bool exited = false;
};

/// tids whose exit the kernel should report, and those it no longer needs to.
struct WatchChanges {
  std::vector<uint32_t> watch;
  std::vector<uint32_t> unwatch;
};

/// Tracks QEMU live-migration threads (QEMU < 9.1 `live_migration`,
/// `multifdsend_<n>`, ...; 9.1+ `mig/src/*`, `mig/dst/*`) and vCPU threads
/// (`CPU <n>/KVM`, `CPU <n>/TCG`, `ALL CPUs/TCG`).
///
/// Fed by thread rename and exit records, after an initial scan of /proc
/// for threads that already exist. Reads /proc, never the BPF maps: the
/// tids whose exit must be reported are handed out by TakeWatchChanges():
/// migration threads for their final runtime and moves, vCPU threads for
/// the delay they had between the last reading and their exit. Not
/// thread-safe.
class QemuTracker {
 public:
  /// Readings after which a vCPU thread whose schedstat is gone is
  /// forgotten if no exit record came for it.
  static constexpr int kExitWaitReadings = 3;
  /// The VM label of a process, empty if it is not a QEMU process.
  using VmOf = std::function<std::string(uint32_t tgid)>;
  explicit QemuTracker(VmOf vm_of);

  /// Finds the migration threads of QEMU processes that run already.
  void Scan();
  /// A thread was named (or renamed) `comm`.
  void OnRename(uint32_t tid, uint32_t tgid, const std::string& comm);
  /// A watched thread exited, with its final runtime, migrations and run
  /// delay.
  void OnExit(uint32_t tid, uint64_t runtime_ns, uint64_t nr_migrations, uint64_t run_delay_ns);
  /// Live threads are read from /proc now.
  QemuState State() const;
  /// Reads the schedstat of every live vCPU thread, one file each, and
  /// hands out the final readings of those that exited since.
  std::vector<VcpuReading> ReadVcpus();
  WatchChanges TakeWatchChanges();

 private:
  struct Thread {
    uint32_t tgid;
    std::string vm;  // label, already folded
    MigrationSide side;
    std::string label;
  };
  struct Vcpu {
    uint32_t tgid;
    std::string vm;  // label, already folded
  };
  using Key = std::pair<std::string, std::string>;  // (vm, thread label)
  using SideKey = std::pair<std::string, MigrationSide>;

  void Add(uint32_t tid, uint32_t tgid, const std::string& comm);
  void Retire(uint32_t tid, uint64_t runtime_ns, uint64_t nr_migrations);
  size_t ThreadsOf(const SideKey& side) const;

  VmOf vm_of_;
  std::unordered_map<uint32_t, Thread> live_;
  std::unordered_map<uint32_t, Vcpu> vcpus_;
  // vCPU threads whose schedstat is gone, until their exit record comes (a
  // thread can end between the delivery of the records and the reading);
  // forgotten after kExitWaitReadings readings without one.
  struct EndedVcpu {
    Vcpu vcpu;
    int readings_waited = 0;
  };
  std::unordered_map<uint32_t, EndedVcpu> ended_vcpus_;
  std::vector<VcpuReading> exited_vcpus_;  // final readings not handed out yet
  std::map<Key, QemuThreadTotals> retired_;
  std::map<SideKey, double> side_start_;  // start of each running migration side
  std::set<SideKey> sides_seen_;          // to report 0 after the end
  WatchChanges watch_changes_;
};

}  // namespace migwatch

// QEMU live-migration threads: seen when they are named, forgotten when they
// exit, with the CPU time and migrations they accumulate.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

#include "migwatch/abi.h"
#include "migwatch/proc/qemu.h"

namespace migwatch {

class Probes;
class Attributor;

/// One live migration in progress, for the terminal view.
struct LiveMigration {
  std::string vm;
  MigrationSide side;
  double start_time_seconds;  ///< unix time its first thread appeared
  size_t threads;
};

/// Tracks QEMU live-migration threads (QEMU < 9.1 `live_migration`,
/// `multifdsend_<n>`, ...; 9.1+ `mig/src/*`, `mig/dst/*`).
///
/// Fed by thread rename and exit records from the task ring buffer, after an
/// initial scan of /proc for threads that already exist. All methods are
/// thread-safe.
class QemuTracker {
 public:
  QemuTracker(const Probes& probes, Attributor& attributor);

  /// Finds the migration threads of QEMU processes that run already.
  void Scan();
  /// Handles one record from the task ring buffer.
  void OnTaskEvent(const mw_task_event& event);
  /// Appends the migwatch_qemu_* families.
  void Collect(std::vector<prometheus::MetricFamily>* out);
  std::vector<LiveMigration> Live();

 private:
  struct Thread {
    uint32_t tgid;
    std::string vm;  // label, already folded
    MigrationSide side;
    std::string label;
  };
  using Key = std::pair<std::string, std::string>;  // (vm, thread label or side)

  void AddLocked(uint32_t tid, uint32_t tgid, const std::string& comm);
  void RetireLocked(uint32_t tid, uint64_t runtime_ns);

  const Probes& probes_;
  Attributor& attributor_;
  std::mutex mutex_;
  std::unordered_map<uint32_t, Thread> live_;
  std::map<Key, uint64_t> retired_runtime_ns_;
  std::map<Key, uint64_t> retired_migrations_;
  std::map<Key, double> side_start_;  // (vm, side) -> start of the running migration
  std::map<Key, bool> sides_seen_;    // every (vm, side) ever seen, to report 0 after the end
};

}  // namespace migwatch

// Recognising QEMU processes, the VMs they run, and their threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace migwatch {

/// True when the basename of `argv0_or_comm` names a QEMU system emulator:
/// "qemu-kvm" or "qemu-system-<arch>" (arch of letters, digits, '_' or '-').
/// A comm truncated to 15 bytes ("qemu-system-x86", "qemu-system-aar") matches
/// too, since the rule needs only a non-empty arch. Pure; thread-safe.
bool IsQemuBinary(std::string_view argv0_or_comm);

/// What a QEMU command line says about its VM.
struct QemuVm {
  /// The `guest` value of -name; the UUID when there is no -name guest; empty
  /// when there is neither (naming the VM after its pid is the caller's job).
  std::string name;
  /// The -uuid value in lower case; empty when absent or not a UUID
  /// (8-4-4-4-12 hexadecimal digits).
  std::string uuid;
  /// True when -incoming is given: the process is, or waits to become, the
  /// destination of a live migration.
  bool incoming = false;

  friend bool operator==(const QemuVm&, const QemuVm&) = default;
};

/// Parses a QEMU argument vector. std::nullopt when argv is empty or argv[0]
/// is not a QEMU binary (IsQemuBinary).
///
/// -name follows QEMU's option syntax: comma-separated key=value pairs where
/// ",," is a literal comma, a first item without '=' is the guest name
/// ("-name vm1,process=x"), and the last guest= wins when several -name
/// options are given, as QEMU merges them. Options may be spelled with one or
/// two dashes. An option missing its value is ignored. The scan does not know
/// the arity of every QEMU option, so a value of another option spelled
/// exactly "-name", "-uuid" or "-incoming" would be misread; QEMU has no option
/// whose value looks like that in practice. Pure; thread-safe.
std::optional<QemuVm> ParseQemuCommandLine(const std::vector<std::string>& argv);

/// What a QEMU thread does, from its name.
enum class QemuThreadKind {
  kVcpu,       ///< "CPU <n>/KVM", "CPU <n>/TCG", "ALL CPUs/TCG"
  kMigration,  ///< a live migration, snapshot or postcopy thread
  kOther,      ///< I/O threads, workers, the main loop, unknown names
};

/// Which end of a live migration a migration thread works for.
enum class MigrationSide {
  kSource,
  kDestination,
};

/// "source" or "destination", for label values.
std::string_view MigrationSideName(MigrationSide side);

/// Classification of one QEMU thread.
struct QemuThread {
  QemuThreadKind kind = QemuThreadKind::kOther;
  /// vCPU index, for kVcpu only; 0 for "ALL CPUs/TCG", which runs them all.
  std::uint32_t vcpu_index = 0;
  /// For kMigration only.
  MigrationSide side = MigrationSide::kSource;
  /// For kMigration only: the thread name without its channel number
  /// ("multifdsend_3" -> "multifdsend", "mig/dst/recv_0" -> "mig/dst/recv"),
  /// so that the set of values stays bounded. Empty for other kinds.
  std::string migration_label;

  friend bool operator==(const QemuThread&, const QemuThread&) = default;
};

/// Classifies a QEMU thread by its comm (at most 15 bytes; QEMU names threads
/// only with -name ...,debug-threads=on, which libvirt always passes).
///
/// vCPU threads: "CPU <n>/KVM" under KVM, "CPU <n>/TCG" under software
/// emulation with a thread per vCPU, and "ALL CPUs/TCG", the one thread of
/// single-threaded software emulation.
///
/// Names recognised as migration threads:
///  - QEMU < 9.1, source: "live_migration", "multifdsend_<n>", "return path",
///    "bg_snapshot", "multifd-tls-han" (the truncated TLS handshake worker).
///  - QEMU < 9.1, destination: "multifdrecv_<n>", "postcopy/<x>",
///    "fault-default", "fault-fast" (postcopy fault and preempt threads of
///    7.0 to 9.0), "COLO incoming".
///  - QEMU >= 9.1: "mig/src/<x>" is source and "mig/dst/<x>" destination
///    ("mig/src/main", "mig/src/send_<n>", "mig/src/return" (9.1:
///    "mig/src/rp-thr"), "mig/src/tls", "mig/dst/recv_<n>", "mig/dst/listen",
///    "mig/dst/fault", "mig/dst/preempt", "mig/dst/colo"), and "mig/snapshot"
///    is source. Exception: "mig/src/recv_<n>" is a destination receive
///    thread, misnamed in QEMU 9.2 development builds; it is labelled
///    "mig/dst/recv".
/// The dirty-rate measuring thread ("get_dirtyrate", "mig/dirtyrate") works
/// for neither side and is kOther. Pure; thread-safe.
QemuThread ClassifyQemuThread(std::string_view comm);

}  // namespace migwatch

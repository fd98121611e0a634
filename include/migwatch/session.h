// What every command that watches the kernel starts with: the attached
// probes, attribution, QEMU thread tracking and the task event stream.
#pragma once

#include <memory>
#include <string>

#include "migwatch/attribution.h"
#include "migwatch/commands.h"
#include "migwatch/probes.h"
#include "migwatch/qemu_tracker.h"

struct ring_buffer;

namespace migwatch {

/// Owns the probes and everything that reads them. Destruction detaches
/// the programs. Poll() must be called from one thread; the accessors are
/// as thread-safe as the objects they return.
class Session {
 public:
  /// Loads and attaches the probes (logging the mode each one got) and scans
  /// /proc for running QEMU migration threads. Returns nullptr and sets
  /// `error` on failure; nothing stays attached then.
  static std::unique_ptr<Session> Open(const CommonOptions& options, std::string* error);
  ~Session();

  Probes& probes() { return *probes_; }
  Attributor& attributor() { return *attributor_; }
  QemuTracker& qemu() { return *qemu_; }

  /// Delivers pending task events (thread renames and exits), waiting up to
  /// `timeout_ms` for one. Returns false on an error other than EINTR.
  bool Poll(int timeout_ms);
  /// Routes one record of the task ring buffer.
  void OnTaskEvent(const mw_task_event& event);

 private:
  Session() = default;
  std::unique_ptr<Probes> probes_;
  std::unique_ptr<Attributor> attributor_;
  std::unique_ptr<QemuTracker> qemu_;
  ring_buffer* task_events_ = nullptr;
};

}  // namespace migwatch

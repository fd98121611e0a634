// What must hold before the probes can be loaded, checked one way for every
// command: `serve` refuses to start on a failure, `check` prints each item.
#pragma once

#include <string>
#include <vector>

namespace migwatch {

enum class PreflightStatus { kPass, kWarn, kFail };

struct PreflightItem {
  std::string what;  ///< "kernel", "BTF", "privileges"
  PreflightStatus status = PreflightStatus::kPass;
  std::string detail;  ///< what was found, and for kFail why it stops migwatch
};

/// The running kernel (a warning if older than the oldest kernel migwatch
/// is tested on), its BTF (every program is relocated against it), and this
/// process's capabilities (the kernel asks for the same ones whatever
/// kernel.unprivileged_bpf_disabled says).
std::vector<PreflightItem> RunPreflight();

}  // namespace migwatch

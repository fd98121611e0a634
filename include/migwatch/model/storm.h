// When the host is in a storm, by the thresholds the alert rules use
// (monitoring/thresholds.json): the daemon records a capture then.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "migwatch/kernel/maps.h"

namespace migwatch {

/// The settings of monitoring/thresholds.json the daemon judges a storm by.
struct StormThresholds {
  double storm_min_rate = 100;            ///< migrations per second of one reason ...
  double storm_factor = 10;               ///< ... and this many times the host's baseline of that reason
  double storm_baseline_seconds = 86400;  ///< time constant of that baseline
  double stopper_cpu_ratio = 0.1;         ///< fraction of one CPU a stopper may run
};

/// Reads thresholds.json ({"key": {"value": ..., "help": ...}, ...}). Returns
/// nullopt and sets `error` (one line) if the file cannot be read, is not
/// such an object, or lacks one of the settings above.
std::optional<StormThresholds> LoadStormThresholds(const std::string& path, std::string* error);

/// Seconds of a Prometheus duration ("90s", "1h30m", "1d"); nullopt if it is
/// not one.
std::optional<double> PrometheusDurationSeconds(const std::string& text);

/// Judges successive counter readings. A storm is what either alert would
/// see if its condition held for the interval between two readings:
/// MigwatchMigrationStorm (a reason's host rate above storm_min_rate and
/// storm_factor times the host's baseline of that reason) or
/// MigwatchStopperCPUHigh (a CPU's stopper running more than
/// stopper_cpu_ratio of the interval). The baseline is an exponentially
/// weighted average over storm_baseline_seconds, begun at the first
/// interval's rate and not fed while a storm lasts.
class StormDetector {
 public:
  explicit StormDetector(const StormThresholds& thresholds) : thresholds_(thresholds) {}
  /// `counters` read `seconds` after the previous reading (ignored for the
  /// first). Returns what is storming ("affinity migrations at 5123/s",
  /// "migration/1 at 17% of its CPU"), or nullopt.
  std::optional<std::string> Observe(const CounterSnapshot& counters, double seconds);

 private:
  StormThresholds thresholds_;
  std::optional<CounterSnapshot> previous_;
  std::vector<double> baseline_;  ///< per reason, migrations per second
};

}  // namespace migwatch

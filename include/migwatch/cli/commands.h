// The migwatch subcommands. Each returns the process exit status.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "migwatch/cli/capture.h"
#include "migwatch/model/session.h"

namespace migwatch {

/// Options every subcommand that loads the probes shares.
using CommonOptions = SessionOptions;

struct ServeOptions {
  CommonOptions common;
  std::vector<std::string> listen_addresses{":19662"};
  std::string telemetry_path = "/metrics";
  std::string web_config_file;
  double sweep_interval_seconds = 1.0;
  /// thresholds.json of the alert rules; empty: no storm captures.
  std::string capture_thresholds_file = "/usr/share/migwatch/prometheus/thresholds.json";
  StormCaptureOptions capture;
};

struct TopOptions {
  CommonOptions common;
  double interval_seconds = 1.0;
  bool batch = false;
  int iterations = 0;  ///< 0: until quit
  std::string sort = "migrations";
};

struct TraceOptions {
  CommonOptions common;
  uint32_t pid = 0;
  std::string comm;
  std::string vm;
  std::string reason;
  int cpu = -1;
  double duration_seconds = 0;  ///< 0: until interrupted
  uint32_t max_rate = 10000;    ///< lines per second printed at most
};

struct CaptureOptions {
  CommonOptions common;
  double duration_seconds = 10;
  std::string output;  ///< the Chrome JSON trace file to write
};

struct CheckOptions {
  CommonOptions common;
  uint32_t storm_flips = 2000;
};

int RunServe(const ServeOptions& options);
int RunTop(const TopOptions& options);
int RunTrace(const TraceOptions& options);
int RunCheck(const CheckOptions& options);
int RunCapture(const CaptureOptions& options);

}  // namespace migwatch

// The daemon's storm captures: when the counters cross the alert rules'
// thresholds, the next seconds of migrations and stopper runs go to a file
// in the state directory (export/capture.h). Tracing is off otherwise.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "migwatch/export/capture.h"
#include "migwatch/model/storm.h"

namespace migwatch {

class Session;

struct StormCaptureOptions {
  std::string dir;                ///< where the files go
  double seconds = 10;            ///< length of one capture
  double interval_seconds = 600;  ///< between the starts of two captures, at least
  size_t max_files = 10;          ///< older files are removed
};

/// Driven by the daemon's main loop.
class StormCapturer {
 public:
  /// Without thresholds it never captures: Tick() only waits.
  StormCapturer(Session& session, const std::optional<StormThresholds>& thresholds, const StormCaptureOptions& options);
  ~StormCapturer();
  /// Waits a loop's tick: shorter while a capture runs, whose records it
  /// then writes. Once a second, judges the counters and starts or
  /// finishes a capture.
  void Tick();
  const CaptureCounts& counts() const { return counts_; }

 private:
  using Clock = std::chrono::steady_clock;
  void Judge(Clock::time_point now);
  void Begin(const std::string& why, Clock::time_point now);
  void End();

  Session& session_;
  std::optional<StormDetector> detector_;
  StormCaptureOptions options_;
  CaptureCounts counts_;
  std::unique_ptr<Capture> capture_;
  std::string capture_path_;
  Clock::time_point capture_end_, next_judgement_, last_reading_;
  std::optional<Clock::time_point> last_start_;
};

}  // namespace migwatch

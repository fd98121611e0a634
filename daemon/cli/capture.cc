// Storm captures in the daemon, and `migwatch capture` on demand.
#include "migwatch/cli/capture.h"

#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "migwatch/cli/commands.h"
#include "migwatch/cli/process.h"
#include "migwatch/kernel/maps.h"
#include "migwatch/model/session.h"

namespace migwatch {
namespace {

// A loop's tick outside captures; the daemon's other chores need no more.
constexpr auto kIdleTick = std::chrono::milliseconds(200);
// During a capture: the ring buffer's 4 MiB hold about 50,000 records;
// drained this often it stays far from full in the worst storms measured
// (README, Performance).
constexpr auto kCaptureTick = std::chrono::milliseconds(20);
// Between two judgements of the counters: the alert rules' rates, taken
// over one second.
constexpr auto kJudgeEvery = std::chrono::seconds(1);

void Sleep(std::chrono::nanoseconds duration) {
  // A signal cuts the wait short (no SA_RESTART), so that a stop is prompt.
  struct timespec wait = {static_cast<time_t>(duration.count() / 1'000'000'000),
                          static_cast<long>(duration.count() % 1'000'000'000)};
  nanosleep(&wait, nullptr);
}

}  // namespace

StormCapturer::StormCapturer(Session& session, const std::optional<StormThresholds>& thresholds,
                             const StormCaptureOptions& options)
    : session_(session), options_(options) {
  if (thresholds) detector_.emplace(*thresholds);
}

StormCapturer::~StormCapturer() {
  // A capture cut short by a stop is still written: it is the storm's start.
  if (capture_) End();
}

void StormCapturer::Tick() {
  Sleep(capture_ ? kCaptureTick : kIdleTick);
  const auto now = Clock::now();
  if (capture_ && !capture_->Drain()) {
    spdlog::error("storm capture {} failed while reading records; abandoned", capture_path_);
    capture_.reset();
  }
  if (capture_ && now >= capture_end_) End();
  if (detector_ && now >= next_judgement_) Judge(now);
}

void StormCapturer::Judge(Clock::time_point now) {
  CounterSnapshot counters;
  ReadCounters(session_.probes(), &counters);
  const double seconds = std::chrono::duration<double>(now - last_reading_).count();
  last_reading_ = now;
  next_judgement_ = now + kJudgeEvery;
  // Judged during a capture too: the detector's baseline follows the host.
  const std::optional<std::string> storm = detector_->Observe(counters, seconds);
  if (!storm || capture_) return;
  if (last_start_ && now - *last_start_ < std::chrono::duration<double>(options_.interval_seconds)) return;
  Begin(*storm, now);
}

void StormCapturer::Begin(const std::string& why, Clock::time_point now) {
  last_start_ = now;
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  capture_path_ = CaptureFilePath(options_.dir);
  std::string error;
  capture_ = Capture::Start(session_, capture_path_, why, &error);
  if (!capture_) {
    spdlog::error("storm ({}), but no capture: {}", why, error);
    return;
  }
  capture_end_ = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options_.seconds));
  spdlog::warn("storm: {}; capturing {}s of migrations and stopper runs into {}", why, options_.seconds, capture_path_);
}

void StormCapturer::End() {
  CaptureSummary summary;
  std::string error;
  const bool written = capture_->Finish(&summary, &error);
  capture_.reset();
  if (!written) {
    spdlog::error("storm capture failed: {}", error);
    return;
  }
  counts_.last_timestamp_seconds = summary.start_unix_seconds;
  ++counts_.captures;
  RemoveOldCaptures(options_.dir, options_.max_files);
  spdlog::info("storm capture {} written: {} migrations, {} stopper runs ({:.3f} s), {} records lost", capture_path_,
               summary.migrations, summary.stopper_runs, summary.stopper_run_ns / 1e9, summary.ring_buffer_drops);
}

int RunCapture(const CaptureOptions& options) {
  // A file that cannot be written is known before the probes are loaded.
  const std::filesystem::path output(options.output);
  const std::filesystem::path dir = output.has_parent_path() ? output.parent_path() : ".";
  if (options.output.empty() || !output.has_filename() || access(dir.c_str(), W_OK) != 0) {
    spdlog::error("cannot write the capture file {}: {}", options.output,
                  options.output.empty() || !output.has_filename() ? "not a file name" : std::strerror(errno));
    return 2;
  }
  CommonOptions common = options.common;
  common.probes.trace = true;
  std::string error;
  auto session = Session::Open(common, &error);
  if (!session) {
    spdlog::error("{}", error);
    return 1;
  }
  auto capture = Capture::Start(*session, options.output, "migwatch capture", &error);
  if (!capture) {
    spdlog::error("{}", error);
    return 1;
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                             std::chrono::duration<double>(options.duration_seconds));
  while (!StopRequested() && std::chrono::steady_clock::now() < deadline) {
    Sleep(kCaptureTick);
    if (!capture->Drain()) {
      spdlog::error("reading the trace ring buffer into {} failed", options.output);
      return 1;
    }
    session->ConsumeEvents();
  }
  CaptureSummary summary;
  if (!capture->Finish(&summary, &error)) {
    spdlog::error("{}", error);
    return 1;
  }
  std::printf("%s: %.1f s, %lu migrations, %lu stopper runs (%.6f s), %lu records lost (ring buffer full)\n",
              options.output.c_str(), summary.seconds, summary.migrations, summary.stopper_runs,
              summary.stopper_run_ns / 1e9, summary.ring_buffer_drops);
  return 0;
}

}  // namespace migwatch

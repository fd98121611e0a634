// Storm captures: the classified migrations and stopper runs of a few
// seconds, read from the trace ring buffer into a file in the Chrome JSON
// trace event format (Perfetto UI and chrome://tracing open it).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "migwatch/abi.h"
#include "migwatch/model/attribution.h"

struct ring_buffer;

namespace migwatch {

class Session;

/// Captures written by the daemon, for its metrics.
struct CaptureCounts {
  std::atomic<uint64_t> captures{0};
  std::atomic<double> last_timestamp_seconds{0};  ///< Unix time the last one began; 0: none yet
};

/// What one capture saw, as written into its file's "otherData".
struct CaptureSummary {
  uint64_t migrations = 0;
  uint64_t stopper_runs = 0;
  uint64_t stopper_run_ns = 0;      ///< the slices' durations, summed
  uint64_t counted_stopper_ns = 0;  ///< the counters' stopper time over the same window
  uint64_t ring_buffer_drops = 0;   ///< records lost, ring buffer full
  double start_unix_seconds = 0;
  double seconds = 0;
};

/// One capture under way: tracing is on from Start() until Finish(). Records
/// go straight to the file (named `path` + ".part" until it is complete), so
/// that memory does not grow with the storm.
class Capture {
 public:
  /// Opens the file and the ring buffer, then turns tracing on. `why` goes
  /// into the file (what triggered it). Returns nullptr and sets `error` (one
  /// line) on failure; tracing stays off then.
  static std::unique_ptr<Capture> Start(Session& session, const std::string& path, const std::string& why,
                                        std::string* error);
  /// Turns tracing off if Finish() was not called, and removes the partial file.
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  /// Writes the records waiting; never blocks. Called every few tens of
  /// milliseconds: the ring buffer holds about 50,000 records. False on a
  /// read or write error.
  bool Drain();
  /// Turns tracing off, writes what is left and completes the file. False
  /// and `error` on failure (the partial file is removed).
  bool Finish(CaptureSummary* summary, std::string* error);

 private:
  Capture(Session& session) : session_(session) {}
  static int OnRecord(void* ctx, void* data, size_t size);
  void OnMigration(const mw_migration_event& e);
  void OnStopperRun(const mw_stopper_run_event& e);
  std::string Requester(uint32_t pid, uint32_t tgid, const char (&comm)[MW_COMM_LEN]);
  const ProcessIdentity& IdentityOf(uint32_t tgid, const char (&comm)[MW_COMM_LEN]);
  void BeginEvent();
  void Abandon();

  Session& session_;
  std::string path_, partial_path_, why_;
  FILE* file_ = nullptr;
  ring_buffer* buffer_ = nullptr;
  bool tracing_ = false;
  bool first_event_ = true;
  uint64_t drained_ = 0;   ///< records read by this Drain()
  uint64_t start_ns_ = 0;  ///< CLOCK_MONOTONIC, as the records' times
  uint64_t counted_stopper_ns_at_start_ = 0, drops_at_start_ = 0;
  std::vector<bool> cpu_seen_;
  std::map<uint32_t, ProcessIdentity> identities_;  ///< by tgid
  CaptureSummary summary_;
};

/// `dir`/migwatch-capture-<UTC time>.json for a capture starting now.
std::string CaptureFilePath(const std::string& dir);
/// Removes the oldest capture files in `dir` beyond the newest `keep`.
void RemoveOldCaptures(const std::string& dir, size_t keep);

}  // namespace migwatch

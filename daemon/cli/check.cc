// migwatch check: can this host run migwatch, and does it count right?
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "migwatch/cli/commands.h"
#include "migwatch/cli/process.h"
#include "migwatch/kernel/preflight.h"
#include "migwatch/model/labels.h"
#include "migwatch/kernel/proc/sched.h"
#include "migwatch/model/session.h"
#include "migwatch/kernel/maps.h"
#include "migwatch/workload/workload.h"

namespace migwatch {
namespace {

class Report {
 public:
  void Pass(const std::string& what, const std::string& detail) { Print(" ok ", what, detail); }
  void Fail(const std::string& what, const std::string& detail) {
    Print("FAIL", what, detail);
    failed_.push_back(what);
  }
  // Worth knowing, not a failure: migwatch runs and counts right without it.
  void Warn(const std::string& what, const std::string& detail) { Print("warn", what, detail); }
  void Info(const std::string& what, const std::string& detail) { Print("info", what, detail); }
  void Check(bool pass, const std::string& what, const std::string& detail) {
    pass ? Pass(what, detail) : Fail(what, detail);
  }

  // The last line, and the exit status.
  int Finish(const std::string& failure_summary = "") const {
    if (failed_.empty()) {
      std::printf("\nPASS: migwatch can run on this host.\n");
      return 0;
    }
    std::string names;
    for (const auto& f : failed_) names += (names.empty() ? "" : ", ") + f;
    std::printf("\nFAIL (%s)%s\n", names.c_str(), failure_summary.empty() ? "" : (": " + failure_summary).c_str());
    return 1;
  }

 private:
  static void Print(const char* tag, const std::string& what, const std::string& detail) {
    std::printf("  [%s] %-12s %s\n", tag, what.c_str(), detail.c_str());
  }
  std::vector<std::string> failed_;
};

// The probe table, then what fentry, the only optional attach mode, gives.
void ReportProbes(Report& report, const std::vector<ProbeStatus>& status) {
  std::printf("\n  %-30s %-11s %s\n", "probe", "mode", "why not a better mode");
  const std::string fentry_prefix = std::string(ProbeModeName(MW_MODE_FENTRY)) + ": ";
  size_t fentry_probes = 0, fentry_attached = 0;
  std::string fentry_refusal;
  for (const auto& p : status) {
    std::string why = p.required ? "(required)" : "";
    if (!p.why_not.empty()) why += (why.empty() ? "" : " ") + p.why_not;
    char columns[64];
    std::snprintf(columns, sizeof(columns), "  %-30s %-11s ", p.name.c_str(), ProbeModeName(p.mode));
    std::string line = columns + why;
    line.erase(line.find_last_not_of(' ') + 1);  // no padding after the last column
    std::printf("%s\n", line.c_str());
    if (p.required && p.mode == MW_MODE_NONE) report.Fail("probe", p.name + " is required and not attached");
    if (p.mode == MW_MODE_FENTRY) {
      ++fentry_probes;
      ++fentry_attached;
    } else if (p.why_not.rfind(fentry_prefix, 0) == 0) {
      ++fentry_probes;
      if (fentry_refusal.empty()) fentry_refusal = p.why_not.substr(fentry_prefix.size(), p.why_not.find("; ") -
                                                                                          fentry_prefix.size());
    }
  }
  std::printf("\n");
  const std::string consequence =
      "counts are complete; the stopper's work is inferred from the moves it makes instead of named by the "
      "function it runs";
  if (fentry_attached == fentry_probes)
    report.Pass("fentry", "all " + std::to_string(fentry_probes) + " fentry probes attached");
  else if (fentry_attached == 0)
    report.Warn("fentry", "unavailable: " + fentry_refusal + "; " + consequence);
  else
    report.Warn("fentry", std::to_string(fentry_attached) + " of " + std::to_string(fentry_probes) +
                              " fentry probes attached (the table says why not the others)");
}

// Flips a spinning thread of this process between two CPUs while it runs,
// so that every flip needs the stopper, and compares this process's counts
// with the kernel's own (no thread starts or ends meanwhile).
void CheckStorm(Report& report, Session& session, uint32_t flips) {
  const auto cpus = workload::AllowedCpus();
  if (cpus.size() < 2) {
    report.Fail("storm", "needs two CPUs to move a thread between");
    return;
  }
  const int a = cpus[0], b = cpus[1];
  workload::SpinningThread spinner(/*yielding=*/true);
  const pid_t tid = spinner.tid();
  workload::PinThread(tid, a);
  // Pinned too, this thread cannot move between the readings below.
  workload::PinThread(workload::CurrentTid(), b);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto kernel_before = ReadLiveThreadMigrations(getpid());
  // None before its first migration: zero.
  const ProcessEntry before = session.ReadProcess(getpid()).value_or(ProcessEntry{});
  const auto start = std::chrono::steady_clock::now();
  const uint64_t done =
      workload::FlipAffinity(tid, a, b, flips, [](int cpu) { workload::PinThread(workload::CurrentTid(), cpu); });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // FlipAffinity leaves this thread allowed on both CPUs, where a wakeup
  // could move it between the two readings below: pinned again first. The
  // spinner stays pinned where the last flip put it.
  workload::PinThread(workload::CurrentTid(), b);
  const auto read_after = session.ReadProcess(getpid());
  const auto kernel_after = ReadLiveThreadMigrations(getpid());
  if (!kernel_before || !kernel_after) {
    report.Fail("storm", "cannot read se.nr_migrations from /proc/self/task/*/sched");
    return;
  }
  if (!read_after) {
    report.Fail("storm", "migwatch has no counts of this process after the storm");
    return;
  }
  const ProcessEntry& after = *read_after;
  const uint64_t counted = TotalMigrations(after.stats) - TotalMigrations(before.stats);
  const uint64_t truth = *kernel_after - *kernel_before;
  std::string reasons;
  for (int r = 0; r < MW_REASON_COUNT; ++r)
    if (uint64_t n = after.stats.migrations[r] - before.stats.migrations[r])
      reasons += (reasons.empty() ? "" : ", ") + std::string(ReasonName(r)) + " " + std::to_string(n);
  char detail[256];
  std::snprintf(detail, sizeof(detail),
                "%lu affinity flips in %.2fs: migwatch counted %lu migrations (%s), kernel se.nr_migrations %lu",
                done, secs, counted, reasons.empty() ? "none" : reasons.c_str(), truth);
  report.Check(done == flips && counted == truth && truth >= flips, "storm", detail);
  if (counted != truth) {
    // How each reading came to its total (CountWakeups), for the report.
    const auto parts = [](const ProcessEntry& e) {
      return "kernel " + std::to_string(e.kernel_migrations) + " (live " + std::to_string(e.live_migrations) +
             "), other reasons " + std::to_string(OtherMigrations(e.stats)) + ", settled during the reading " +
             std::to_string(e.pending_others) + ", wakeups " + std::to_string(e.stats.migrations[MW_REASON_WAKEUP]);
    };
    report.Info("storm", "before: " + parts(before) + "; after: " + parts(after));
  }

  // The stopper work this process asked for: the storm's, not that of
  // whatever else runs on the host.
  const uint64_t asked_ns = after.stats.stopper_requested_ns - before.stats.stopper_requested_ns;
  const uint64_t asked_runs = after.stats.stopper_requested_runs - before.stats.stopper_requested_runs;
  std::snprintf(detail, sizeof(detail), "the storm had migration/%d and migration/%d run %.3f ms in %lu runs", a, b,
                asked_ns / 1e6, asked_runs);
  report.Check(asked_ns > 0, "stopper", detail);
}

}  // namespace

int RunCheck(const CheckOptions& options) {
  Report report;
  std::printf("migwatch check (%s)\n\n", VersionString().c_str());
  bool can_load = true;
  for (const auto& item : RunPreflight()) {
    if (item.status == PreflightStatus::kPass)
      report.Pass(item.what, item.detail);
    else if (item.status == PreflightStatus::kWarn)
      report.Warn(item.what, item.detail);
    else
      report.Fail(item.what, item.detail);
    can_load = can_load && item.status != PreflightStatus::kFail;
  }
  if (!can_load) return report.Finish("the BPF programs cannot be loaded");

  // The daemon's own loading path. Its per-probe log lines would interleave
  // with the report; the table says the same.
  const auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::err);
  std::string error;
  auto session = Session::Open(options.common, &error);
  spdlog::set_level(level);
  if (!session) {
    report.Fail("probes", error);
    return report.Finish();
  }
  ReportProbes(report, session->probes().status());
  CheckStorm(report, *session, options.storm_flips);
  return report.Finish();
}

}  // namespace migwatch

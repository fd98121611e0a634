// Churn and cardinality: 100,000 short-lived threads and 1,000 short-lived
// processes during a storm. The BPF maps and the daemon's memory stay
// bounded, label values stay within their caps, and the storm process,
// alive throughout, is counted exactly.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "robust.h"

namespace migwatch::testing {
namespace {

constexpr int kLabelCap = 50;
constexpr unsigned kMaxProcesses = 4096;  // the daemon's default

size_t LiveProcesses() {
  size_t n = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec))
    n += entry.path().filename().string().find_first_not_of("0123456789") == std::string::npos;
  return n;
}

TEST(Churn, ShortLivedThreadsAndProcessesKeepMapsMemoryAndLabelsBounded) {
  MIGWATCH_REQUIRE_BPF();
  Daemon d({kMigwatch, "--web.listen-address=127.0.0.1:0", "--labels.cap=" + std::to_string(kLabelCap)});
  ASSERT_TRUE(d.WaitReady()) << d.Log();
  const std::string name = "mwr-churn-storm";
  // --while-running: every flip needs the stopper, and the spinner yields,
  // so that it does not hold up each churned thread pinned to its CPU for a
  // time slice (which makes the churn take minutes instead of seconds).
  NamedProgram workload(kWorkload, name);
  Subprocess storm(workload.path(), {name, "--hold", "affinity-storm", "--while-running", "--flips", "300000"});
  ASSERT_TRUE(storm.ValueOf("spinner_tid"));
  storm.Send("go");
  // The storm takes one of the first label values before the churn asks
  // for a thousand more.
  bool labelled = false;
  for (int i = 0; i < 50 && !labelled; ++i) {
    labelled = LabelValues(Scrape(d.port()), "migwatch_process_migrations_total", "process").count(name) > 0;
    if (!labelled) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(labelled) << "the storm process never got its own label";
  const uint64_t rss_before = RssBytes(d.pid());
  const size_t series_before = Scrape(d.port()).samples.size();

  Finished churn = RunToEnd({kWorkload, "churn", "--threads", "100000", "--processes", "1000"}, 150);
  ASSERT_TRUE(churn.exited && churn.exit_code == 0) << churn.output;
  ASSERT_TRUE(storm.ValueOf("flips", 120)) << "the storm did not finish";
  // Two sweeps (one a second) fold the exited processes.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));

  CountCheck c = CompareProcessCount(d.port(), storm.pid(), name);
  EXPECT_TRUE(c.exact) << "migwatch " << c.migwatch << ", kernel " << c.kernel;
  Exposition e = Scrape(d.port());
  const uint64_t rss_after = RssBytes(d.pid());
  const auto processes = LabelValues(e, "migwatch_process_migrations_total", "process");
  const auto requesters = LabelValues(e, "migwatch_affinity_changes_total", "requester");
  EXPECT_LE(processes.size(), kLabelCap + 1u);  // + "other"
  EXPECT_LE(requesters.size(), kLabelCap + 1u);
  EXPECT_EQ(processes.count("other"), 1u);
  const double folded = Sum(e, "migwatch_label_values_folded_total", {"label=\"process\""});
  EXPECT_GE(folded, 1000 - kLabelCap);
  // Exited processes leave the process map; exited threads leave the map
  // of exiting threads once they are gone.
  auto process_entries = MapEntries(d.pid(), "process_stats");
  auto exiting_entries = MapEntries(d.pid(), "exiting_threads");
  ASSERT_TRUE(process_entries && exiting_entries);
  EXPECT_LE(*process_entries, LiveProcesses() + 50) << "dead processes stay in the process map";
  EXPECT_LE(*exiting_entries, 50u) << "ended threads stay in the map of exiting threads";
  EXPECT_LT(*process_entries, kMaxProcesses);
  // Memory: what 1,000 names and 100,000 threads leave behind, at most.
  EXPECT_LT(rss_after, rss_before + (8u << 20));
  std::printf("churn of 100000 threads and 1000 processes in %.1f s during a storm:\n"
              "  storm process: migwatch %.0f, kernel se.nr_migrations %lu\n"
              "  daemon RSS %.1f MiB before, %.1f MiB after; series %zu before, %zu after\n"
              "  process label values %zu (cap %d), requester %zu, folded process values %.0f\n"
              "  map entries: process_stats %zu (live processes %zu), exiting_threads %zu\n",
              churn.seconds, c.migwatch, c.kernel, rss_before / 1048576.0, rss_after / 1048576.0, series_before,
              e.samples.size(), processes.size(), kLabelCap, requesters.size(), folded, *process_entries,
              LiveProcesses(), *exiting_entries);
  Finished stopped = d.Stop(SIGTERM);
  EXPECT_EQ(stopped.exit_code, 0) << stopped.output;
}

}  // namespace
}  // namespace migwatch::testing

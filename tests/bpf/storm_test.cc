// The core promise, checked against the kernel's own counters: every
// migration is counted, and the stopper's CPU time is what the scheduler
// charged it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <numeric>
#include <thread>

#include "migwatch/kernel/proc/sched.h"
#include "migwatch/kernel/proc/schedstat.h"
#include "migwatch/model/labels.h"
#include "migwatch/model/session.h"
#include "migwatch/workload/workload.h"
#include "support/kernel_truth.h"
#include "support/require.h"

namespace migwatch {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kFlips = 20000;

uint64_t Sum(const __u64 (&a)[MW_REASON_COUNT]) { return std::accumulate(std::begin(a), std::end(a), uint64_t{0}); }

TEST(AffinityStorm, CountsAndStopperTimeEqualTheKernels) {
  MIGWATCH_REQUIRE_BPF();
  std::string error;
  auto session = Session::Open(SessionOptions{}, &error);
  ASSERT_TRUE(session) << error;
  auto cpus = workload::AllowedCpus();
  ASSERT_GE(cpus.size(), 2u) << "the storm needs two CPUs";
  const int a = cpus[0], b = cpus[1];
  auto stopper_a = testing::StopperPid(a), stopper_b = testing::StopperPid(b);
  ASSERT_TRUE(stopper_a && stopper_b) << "no migration/N threads found in /proc";

  // Every flip finds the spinner running, so every move goes through the
  // stopper on the CPU it leaves. No thread of this process starts or ends
  // from here on, so the sum over its threads is the kernel's count.
  workload::SpinningThread spinner(/*yielding=*/true);
  ASSERT_TRUE(workload::PinThread(spinner.tid(), a));
  // Pinned too, this thread cannot move between the readings below.
  ASSERT_TRUE(workload::PinThread(0, b));
  std::this_thread::sleep_for(50ms);

  // A snapshot and the stoppers' schedstat as of one moment: read on both
  // sides of the snapshot, and again if a stopper ran in between (the
  // watchdog's work runs on every CPU every few seconds).
  struct Reading {
    Snapshot snapshot;
    SchedStat a, b;  // of migration/a and migration/b
  };
  const auto read_at_one_moment = [&](Reading* r) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      const auto a = ReadProcessSchedStat(*stopper_a), b = ReadProcessSchedStat(*stopper_b);
      r->snapshot = session->TakeSnapshot();
      const auto a_after = ReadProcessSchedStat(*stopper_a), b_after = ReadProcessSchedStat(*stopper_b);
      if (a && b && a_after && b_after && a->run_ns == a_after->run_ns && b->run_ns == b_after->run_ns &&
          a->timeslices == a_after->timeslices && b->timeslices == b_after->timeslices) {
        r->a = *a;
        r->b = *b;
        return true;
      }
    }
    return false;
  };
  auto kernel0 = ReadLiveThreadMigrations(getpid());
  const ProcessEntry process0 = session->ReadProcess(getpid()).value_or(ProcessEntry{});
  Reading r0;
  ASSERT_TRUE(read_at_one_moment(&r0)) << "a stopper ran during each of 20 snapshots";
  const Snapshot& s0 = r0.snapshot;

  auto start = std::chrono::steady_clock::now();
  const uint64_t flips =
      workload::FlipAffinity(spinner.tid(), a, b, kFlips, [](int cpu) { workload::PinThread(0, cpu); });
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(flips, kFlips);
  // Both threads now stay pinned to one CPU each: nothing moves them.
  std::this_thread::sleep_for(50ms);

  Reading r1;
  ASSERT_TRUE(read_at_one_moment(&r1)) << "a stopper ran during each of 20 snapshots";
  const Snapshot& s1 = r1.snapshot;
  const auto process1 = session->ReadProcess(getpid());
  ASSERT_TRUE(process1) << "migwatch has no counts of this process";
  auto kernel1 = ReadLiveThreadMigrations(getpid());
  ASSERT_TRUE(kernel0 && kernel1);
  const uint64_t sched_a_ns = r1.a.run_ns - r0.a.run_ns, sched_b_ns = r1.b.run_ns - r0.b.run_ns;

  const uint64_t kernel_delta = *kernel1 - *kernel0;
  const uint64_t migwatch_delta = Sum(process1->stats.migrations) - Sum(process0.stats.migrations);
  const uint64_t host_delta = Sum(s1.counters.host.migrations) - Sum(s0.counters.host.migrations);
  uint64_t in_delta = 0, out_delta = 0;
  for (size_t cpu = 0; cpu < s1.counters.cpu_moves.size(); ++cpu) {
    in_delta += s1.counters.cpu_moves[cpu].in - s0.counters.cpu_moves[cpu].in;
    out_delta += s1.counters.cpu_moves[cpu].out - s0.counters.cpu_moves[cpu].out;
  }
  const uint64_t stopper_a_ns = s1.counters.cpus[a].stopper_run_ns - s0.counters.cpus[a].stopper_run_ns;
  const uint64_t stopper_b_ns = s1.counters.cpus[b].stopper_run_ns - s0.counters.cpus[b].stopper_run_ns;

  std::printf("storm: N=%lu flips in %.2fs (%.0f/s); migwatch process count %lu, kernel se.nr_migrations %lu; "
              "host %lu, in %lu, out %lu\n",
              flips, seconds, flips / seconds, migwatch_delta, kernel_delta, host_delta, in_delta, out_delta);
  std::printf("stopper ns: cpu%d migwatch %lu schedstat %lu; cpu%d migwatch %lu schedstat %lu\n", a, stopper_a_ns,
              sched_a_ns, b, stopper_b_ns, sched_b_ns);
  // The kernel counts a run at each switch in (schedstat's timeslices): a
  // run migwatch did not charge shows here too, as one run more.
  const auto runs = [](const Snapshot& s, int cpu) -> uint64_t { return s.counters.cpus[cpu].stopper_runs; };
  std::printf("stopper runs: cpu%d migwatch %lu schedstat %lu; cpu%d migwatch %lu schedstat %lu\n", a,
              runs(s1, a) - runs(s0, a), r1.a.timeslices - r0.a.timeslices, b, runs(s1, b) - runs(s0, b),
              r1.b.timeslices - r0.b.timeslices);
  // A run whose switch in was not traced is still charged in full at its
  // switch out; it shows here.
  const auto unseen = [&](int cpu) -> uint64_t {
    return s1.counters.cpus[cpu].stopper_run_starts_unseen - s0.counters.cpus[cpu].stopper_run_starts_unseen;
  };
  std::printf("stopper run starts unseen: cpu%d %lu, cpu%d %lu\n", a, unseen(a), b, unseen(b));
  for (const auto& m : s1.misses)
    if (m.misses) std::printf("program %s: %lu runs missed since the session began\n", m.program.c_str(), m.misses);
  RecordProperty("flips", std::to_string(flips));
  RecordProperty("kernel_migrations", std::to_string(kernel_delta));
  RecordProperty("migwatch_migrations", std::to_string(migwatch_delta));

  // Short only by events the kernel did not run the program for, counted.
  uint64_t missed = 0;
  for (const auto& m : s1.misses)
    if (m.program.rfind("sched_migrate_task", 0) == 0) missed += m.misses;
  for (const auto& m : s0.misses)
    if (m.program.rfind("sched_migrate_task", 0) == 0) missed -= m.misses;
  EXPECT_LE(migwatch_delta, kernel_delta);
  EXPECT_LE(kernel_delta - migwatch_delta, missed) << "uncounted migrations beyond the program's misses";
  EXPECT_GE(kernel_delta, kFlips);
  EXPECT_GE(host_delta, kFlips);
  EXPECT_EQ(in_delta, host_delta);
  EXPECT_EQ(out_delta, host_delta);
  // The scheduler's own accounting of the stopper (what schedstat and top
  // show): equal.
  EXPECT_GT(stopper_a_ns, 0u);
  EXPECT_GT(stopper_b_ns, 0u);
  EXPECT_EQ(stopper_a_ns, sched_a_ns);
  EXPECT_EQ(stopper_b_ns, sched_b_ns);
}

TEST(Probes, RequiredProbesAttachAndEveryProbeReportsAMode) {
  MIGWATCH_REQUIRE_BPF();
  std::string error;
  auto probes = Probes::Load(ProbeOptions{}, &error);
  ASSERT_TRUE(probes) << error;
  for (const auto& p : probes->status()) {
    std::printf("probe %-30s %-10s %s\n", p.name.c_str(), ProbeModeName(p.mode), p.why_not.c_str());
    if (p.required) {
      EXPECT_NE(p.mode, MW_MODE_NONE) << p.name;
    }
    if (p.mode == MW_MODE_NONE) {
      EXPECT_FALSE(p.why_not.empty()) << p.name << " has no mode and no reason";
    }
  }
}

}  // namespace
}  // namespace migwatch

// The core promise, checked against the kernel's own counters: every
// migration of a thread is counted, and the stopper's CPU time is measured.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "bpf_test_support.h"
#include "migwatch/labels.h"
#include "migwatch/probes.h"
#include "migwatch/proc/sched.h"
#include "migwatch/snapshot.h"
#include "migwatch/workload/workload.h"

namespace migwatch {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kFlips = 20000;

uint64_t Sum(const __u64 (&a)[MW_REASON_COUNT]) {
  uint64_t s = 0;
  for (uint64_t v : a) s += v;
  return s;
}

TEST(AffinityStorm, CountsEqualTheKernelsAndStopperTimeIsBoundedBySchedstat) {
  MIGWATCH_REQUIRE_BPF();
  std::string error;
  auto probes = Probes::Load(ProbeOptions{}, &error);
  ASSERT_TRUE(probes) << error;
  auto cpus = workload::AllowedCpus();
  ASSERT_GE(cpus.size(), 2u) << "the storm needs two CPUs";
  const int a = cpus[0], b = cpus[1];
  auto stopper_a = testing::StopperPid(a), stopper_b = testing::StopperPid(b);
  ASSERT_TRUE(stopper_a && stopper_b) << "no migration/N threads found in /proc";

  // Every flip finds the spinner running, so every move goes through the
  // stopper on the CPU it leaves.
  workload::SpinningThread spinner(/*yielding=*/true);
  const pid_t tid = spinner.tid();
  ASSERT_TRUE(workload::PinThread(tid, a));
  std::this_thread::sleep_for(50ms);

  // Schedstat is read outside the BPF reads on both ends, so its interval
  // contains migwatch's.
  auto sched_a0 = testing::SchedstatRuntimeNs(*stopper_a), sched_b0 = testing::SchedstatRuntimeNs(*stopper_b);
  auto kernel0 = ReadNrMigrations(getpid(), tid);
  ThreadCounts thread0;
  ReadThread(*probes, tid, &thread0);  // absent before its first migration: zero
  CounterSnapshot c0;
  ASSERT_TRUE(ReadCounters(*probes, &c0));

  auto start = std::chrono::steady_clock::now();
  const uint64_t flips =
      workload::FlipAffinity(tid, a, b, kFlips, [](int cpu) { workload::PinThread(0, cpu); });
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(flips, kFlips);
  // The spinner now stays pinned to one CPU: nothing moves it any more.

  CounterSnapshot c1;
  ASSERT_TRUE(ReadCounters(*probes, &c1));
  ThreadCounts thread1;
  ASSERT_TRUE(ReadThread(*probes, tid, &thread1)) << "the spinner is not in the thread map";
  auto kernel1 = ReadNrMigrations(getpid(), tid);
  auto sched_a1 = testing::SchedstatRuntimeNs(*stopper_a), sched_b1 = testing::SchedstatRuntimeNs(*stopper_b);
  ASSERT_TRUE(kernel0 && kernel1 && sched_a0 && sched_a1 && sched_b0 && sched_b1);

  const uint64_t kernel_delta = *kernel1 - *kernel0;
  const uint64_t migwatch_delta = thread1.total() - thread0.total();
  const uint64_t host_delta = Sum(c1.host.migrations) - Sum(c0.host.migrations);
  uint64_t in_delta = 0, out_delta = 0;
  for (size_t cpu = 0; cpu < c1.cpu_moves.size(); ++cpu) {
    in_delta += c1.cpu_moves[cpu].in - c0.cpu_moves[cpu].in;
    out_delta += c1.cpu_moves[cpu].out - c0.cpu_moves[cpu].out;
  }
  const double stopper_a_s = (c1.stopper[a].run_ns - c0.stopper[a].run_ns) / 1e9;
  const double stopper_b_s = (c1.stopper[b].run_ns - c0.stopper[b].run_ns) / 1e9;
  const double sched_a_s = (*sched_a1 - *sched_a0) / 1e9, sched_b_s = (*sched_b1 - *sched_b0) / 1e9;

  std::printf("storm: N=%lu flips in %.2fs (%.0f/s); migwatch thread count %lu, kernel se.nr_migrations %lu; "
              "host %lu, in %lu, out %lu\n",
              flips, seconds, flips / seconds, migwatch_delta, kernel_delta, host_delta, in_delta, out_delta);
  std::printf("stopper seconds: cpu%d migwatch %.4f schedstat %.4f; cpu%d migwatch %.4f schedstat %.4f\n", a,
              stopper_a_s, sched_a_s, b, stopper_b_s, sched_b_s);
  RecordProperty("flips", std::to_string(flips));
  RecordProperty("kernel_migrations", std::to_string(kernel_delta));
  RecordProperty("migwatch_migrations", std::to_string(migwatch_delta));

  EXPECT_EQ(migwatch_delta, kernel_delta);
  EXPECT_GE(kernel_delta, kFlips);
  EXPECT_GE(host_delta, kFlips);
  EXPECT_GE(in_delta, kFlips);
  EXPECT_GE(out_delta, kFlips);
  EXPECT_GT(stopper_a_s, 0);
  EXPECT_GT(stopper_b_s, 0);
  EXPECT_LE(stopper_a_s, sched_a_s * 1.02);
  EXPECT_LE(stopper_b_s, sched_b_s * 1.02);
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

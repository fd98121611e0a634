// Reads the real /proc of this test process and checks it against what the
// test knows independently: its pid, thread names it sets, CPUs it pins
// itself to, its capabilities.
#include <errno.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "migwatch/kernel/proc/cmdline.h"
#include "migwatch/kernel/proc/kernel_thread.h"
#include "migwatch/kernel/proc/qemu.h"
#include "migwatch/kernel/proc/sched.h"
#include "migwatch/kernel/proc/schedstat.h"
#include "migwatch/kernel/proc/stat.h"
#include "migwatch/kernel/proc/status.h"

namespace migwatch {
namespace {

constexpr std::uint64_t kNsPerSecond = 1'000'000'000;

std::uint64_t ThreadCpuTimeNs() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * kNsPerSecond +
         static_cast<std::uint64_t>(now.tv_nsec);
}

void BurnCpu(std::uint64_t ns) {
  const std::uint64_t until = ThreadCpuTimeNs() + ns;
  while (ThreadCpuTimeNs() < until) {
  }
}

// Runs `body(tid)` on a new thread while the thread is parked (blocked on a
// future), after `setup()` ran on that thread. Returns when `body` returns.
void WithParkedThread(const std::function<void()>& setup, const std::function<void(pid_t)>& body) {
  std::promise<pid_t> started;
  std::promise<void> release;
  std::thread worker([&] {
    setup();
    started.set_value(::gettid());
    release.get_future().wait();
  });
  const pid_t tid = started.get_future().get();
  body(tid);
  release.set_value();
  worker.join();
}

TEST(LiveProc, StatOfThisProcess) {
  const auto stat = ReadProcessStat(::getpid());
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->pid, ::getpid());
  EXPECT_EQ(stat->ppid, ::getppid());
  EXPECT_EQ(stat->state, 'R');  // reading its own stat, it is running
  EXPECT_FALSE(stat->IsKernelThread());
  EXPECT_GE(stat->num_threads, 1u);
  EXPECT_GT(stat->rss_pages, 0u);
  EXPECT_EQ(ReadTaskComm(::getpid(), ::getpid()), stat->comm);
  EXPECT_EQ(ReadStatusField(::getpid(), "Name"), stat->comm);
  EXPECT_EQ(ReadStatusField(::getpid(), "Pid"), std::to_string(::getpid()));
  EXPECT_EQ(ReadStatusField(::getpid(), "PPid"), std::to_string(::getppid()));
  EXPECT_FALSE(IsQemuBinary(stat->comm));
}

TEST(LiveProc, StartTimeIsNotInTheFuture) {
  const auto stat = ReadProcessStat(::getpid());
  ASSERT_TRUE(stat.has_value());
  timespec boot_clock{};
  clock_gettime(CLOCK_BOOTTIME, &boot_clock);
  const auto ticks_per_second = static_cast<std::uint64_t>(sysconf(_SC_CLK_TCK));
  const std::uint64_t now_ticks = static_cast<std::uint64_t>(boot_clock.tv_sec) * ticks_per_second;
  EXPECT_LE(stat->starttime_ticks, now_ticks + ticks_per_second);
}

TEST(LiveProc, CmdlineOfThisProcess) {
  const auto argv = ReadCmdline(::getpid());
  ASSERT_TRUE(argv.has_value());
  ASSERT_FALSE(argv->empty());
  EXPECT_EQ(argv->front(), program_invocation_name);
  EXPECT_EQ(ParseQemuCommandLine(*argv), std::nullopt);
}

TEST(LiveProc, NamedThreadShowsUpWithItsName) {
  constexpr char kName[] = "mw-probe-4242";  // 13 bytes: fits in a comm
  WithParkedThread([&] { ASSERT_EQ(pthread_setname_np(pthread_self(), kName), 0); },
                   [&](pid_t tid) {
                     EXPECT_NE(tid, ::getpid());
                     EXPECT_EQ(ReadTaskComm(::getpid(), tid), kName);
                     const auto stat = ReadTaskStat(::getpid(), tid);
                     ASSERT_TRUE(stat.has_value());
                     EXPECT_EQ(stat->pid, tid);
                     EXPECT_EQ(stat->comm, kName);
                     EXPECT_GE(stat->num_threads, 2u);
                     EXPECT_GE(ReadProcessStat(::getpid())->num_threads, 2u);
                     EXPECT_TRUE(ReadNrMigrations(::getpid(), tid).has_value());
                   });
}

TEST(LiveProc, NameWithParenthesesAndSpacesRoundTrips) {
  constexpr char kName[] = "a) (b c) S 1";  // looks like the end of a comm
  WithParkedThread([&] { ASSERT_EQ(pthread_setname_np(pthread_self(), kName), 0); },
                   [&](pid_t tid) {
                     const auto stat = ReadTaskStat(::getpid(), tid);
                     ASSERT_TRUE(stat.has_value());
                     EXPECT_EQ(stat->comm, kName);
                     EXPECT_EQ(stat->pid, tid);
                     EXPECT_EQ(stat->ppid, ::getppid());
                   });
}

// A blocked thread's se.sum_exec_runtime does not change, so the sched file
// (milliseconds with six decimals) and schedstat (nanoseconds) must agree to
// the nanosecond: an exact check of the unit conversion.
TEST(LiveProc, SchedAndSchedstatAgreeOnABlockedThread) {
  constexpr std::uint64_t kBurnNs = 20'000'000;
  std::uint64_t cpu_time_before_parking = 0;
  WithParkedThread(
      [&] {
        BurnCpu(kBurnNs);
        cpu_time_before_parking = ThreadCpuTimeNs();
      },
      [&](pid_t tid) {
        // The thread may still be on its way into the futex: retry until two
        // sched reads around the schedstat read agree.
        for (int attempt = 0; attempt < 50; ++attempt) {
          const auto before = ReadTaskSched(::getpid(), tid);
          const auto schedstat = ReadTaskSchedStat(::getpid(), tid);
          const auto after = ReadTaskSched(::getpid(), tid);
          ASSERT_TRUE(before && schedstat && after);
          if (before != after) continue;
          EXPECT_EQ(schedstat->run_ns, before->sum_exec_runtime_ns);
          EXPECT_GE(before->sum_exec_runtime_ns, cpu_time_before_parking);
          EXPECT_GE(schedstat->timeslices, 1u);
          return;
        }
        FAIL() << "the parked thread kept running";
      });
}

TEST(LiveProc, ProcessSchedstatDescribesTheLeader) {
  BurnCpu(5'000'000);
  const auto process = ReadProcessSchedStat(::getpid());
  ASSERT_TRUE(process.has_value());
  EXPECT_GE(process->run_ns, 5'000'000u);
}

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

bool PinCallingThreadTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// A thread pinned to one CPU cannot be moved by anything but its next pin, and
// re-pinning a running thread away from its CPU moves it exactly once: so the
// kernel's count must rise by exactly the number of re-pins.
TEST(LiveProc, NrMigrationsCountsForcedMovesExactly) {
  const std::vector<int> cpus = AllowedCpus();
  ASSERT_GE(cpus.size(), 2u) << "this test needs two CPUs to move a thread between; it has "
                             << cpus.size();
  constexpr std::size_t kMoves = 6;
  std::thread worker([&] {
    const pid_t tid = ::gettid();
    ASSERT_TRUE(PinCallingThreadTo(cpus[0])) << "sched_setaffinity: " << errno;
    ASSERT_EQ(sched_getcpu(), cpus[0]);
    const auto start = ReadNrMigrations(::getpid(), tid);
    ASSERT_TRUE(start.has_value());
    for (std::size_t move = 1; move <= kMoves; ++move) {
      const int cpu = cpus[move % 2];
      ASSERT_TRUE(PinCallingThreadTo(cpu));
      ASSERT_EQ(sched_getcpu(), cpu);
      BurnCpu(1'000'000);
    }
    const auto end = ReadNrMigrations(::getpid(), tid);
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(*end - *start, kMoves);
    const auto stat = ReadTaskStat(::getpid(), tid);
    ASSERT_TRUE(stat.has_value());
    EXPECT_EQ(stat->processor, static_cast<std::uint32_t>(cpus[kMoves % 2]));
  });
  worker.join();
}

TEST(LiveProc, EffectiveCapabilitiesMatchCapget) {
  __user_cap_header_struct header{.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  ASSERT_EQ(syscall(SYS_capget, &header, data), 0) << "capget: " << errno;
  const std::uint64_t expected_effective =
      (static_cast<std::uint64_t>(data[1].effective) << 32) | data[0].effective;
  const std::uint64_t expected_permitted =
      (static_cast<std::uint64_t>(data[1].permitted) << 32) | data[0].permitted;

  const auto effective = ReadStatusField(::getpid(), "CapEff");
  const auto permitted = ReadStatusField(::getpid(), "CapPrm");
  ASSERT_TRUE(effective && permitted);
  EXPECT_EQ(ParseCapabilityMask(*effective), expected_effective);
  EXPECT_EQ(ParseCapabilityMask(*permitted), expected_permitted);
}

TEST(LiveProc, StopperThreadsAreKernelThreadsNamedMigration) {
  int stoppers = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    const auto stat = ReadProcessStat(pid);
    if (!stat || !IsStopperThreadName(stat->comm)) continue;
    SCOPED_TRACE(stat->comm);
    ++stoppers;
    EXPECT_TRUE(stat->IsKernelThread());
    EXPECT_EQ(KernelThreadLabel(stat->comm), "migration");
    EXPECT_EQ(stat->ppid, 2);  // children of kthreadd
    EXPECT_EQ(ReadCmdline(pid), std::vector<std::string>{});
    EXPECT_TRUE(ReadProcessSchedStat(pid).has_value());
    EXPECT_TRUE(ReadNrMigrations(pid, pid).has_value());
  }
  EXPECT_GE(stoppers, sysconf(_SC_NPROCESSORS_ONLN))
      << "one migration/N thread per online CPU expected; is /proc from another pid namespace?";
}

TEST(LiveProc, TasksThatDoNotExistGiveNothing) {
  std::ifstream pid_max_file("/proc/sys/kernel/pid_max");
  pid_t pid_max = 0;
  ASSERT_TRUE(pid_max_file >> pid_max);
  // Pids are always below pid_max.
  EXPECT_EQ(ReadProcessStat(pid_max), std::nullopt);
  EXPECT_EQ(ReadTaskStat(::getpid(), pid_max), std::nullopt);
  EXPECT_EQ(ReadTaskComm(::getpid(), pid_max), std::nullopt);
  EXPECT_EQ(ReadNrMigrations(::getpid(), pid_max), std::nullopt);
  EXPECT_EQ(ReadTaskSched(pid_max, pid_max), std::nullopt);
  EXPECT_EQ(ReadProcessSchedStat(pid_max), std::nullopt);
  EXPECT_EQ(ReadTaskSchedStat(::getpid(), pid_max), std::nullopt);
  EXPECT_EQ(ReadStatusField(pid_max, "Name"), std::nullopt);
  EXPECT_EQ(ReadCmdline(pid_max), std::nullopt);
}

}  // namespace
}  // namespace migwatch

// Workloads that make the kernel migrate tasks in known ways, for the tests,
// the self-check and the benchmarks.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace migwatch::workload {

/// A thread that burns CPU until stopped, so that moving it off its CPU
/// always needs the stopper (it is running) or a queued-task move.
class SpinningThread {
 public:
  /// With `yielding`, it calls sched_yield() between spins: still on its CPU
  /// whenever it is alone there, but it lets a thread that shares the CPU
  /// run at once instead of after a time slice.
  explicit SpinningThread(bool yielding = false);
  ~SpinningThread();
  SpinningThread(const SpinningThread&) = delete;
  SpinningThread& operator=(const SpinningThread&) = delete;
  pid_t tid() const { return tid_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<pid_t> tid_{0};
  std::thread thread_;
};

/// Pins `tid` to one CPU. Returns false on failure (errno set).
bool PinThread(pid_t tid, int cpu);

/// Flips `tid`'s affinity between `cpu_a` and `cpu_b`, `flips` times, from
/// the calling thread, starting with `cpu_b`. Returns the calls that
/// succeeded; each one forces the thread off the CPU it was on.
///
/// Back to back, the flipper mostly finds the spinner queued behind itself
/// on one CPU and moves it directly. With `move_self`, the calling thread is
/// first put on the destination CPU (by that function) and then allowed on
/// both CPUs again, so the spinner is running alone on the other CPU when
/// that CPU is taken away: every flip then needs the stopper thread, as when
/// a management daemon repins running vCPUs. When the flip completes, the
/// wakeup puts the caller on the CPU the spinner left, not behind it.
uint64_t FlipAffinity(pid_t tid, int cpu_a, int cpu_b, uint64_t flips,
                      const std::function<void(int cpu)>& move_self = nullptr);

/// Two threads that wake each other through pipes. Before each wakeup the
/// sleeping partner (the "sleeper") is switched to the CPU it did not run on
/// last, while it is off-CPU, so that every wakeup has to place it on the
/// other CPU. The sleeper lives as long as the object.
class PingPong {
 public:
  PingPong(int cpu_a, int cpu_b);
  ~PingPong();
  PingPong(const PingPong&) = delete;
  PingPong& operator=(const PingPong&) = delete;
  pid_t sleeper_tid() const { return sleeper_tid_.load(); }
  /// Runs `rounds` wakeups; returns the rounds completed.
  uint64_t Run(uint64_t rounds);

 private:
  int cpu_a_, cpu_b_;
  int to_sleeper_[2] = {-1, -1}, to_driver_[2] = {-1, -1};
  std::atomic<pid_t> sleeper_tid_{0};
  uint64_t switches_ = 0;  // the sleeper's voluntary switches when last off-CPU
  uint64_t done_ = 0;
  bool wchan_named_ = false;  // whether this kernel names a sleeping thread's wchan
  std::thread sleeper_;

  bool AsleepInPipeRead(pid_t tid) const;
};

/// The calling thread's tid.
pid_t CurrentTid();

/// The CPUs this process may use, in ascending order.
std::vector<int> AllowedCpus();

}  // namespace migwatch::workload

// Workloads that make the kernel migrate tasks in known ways, for the tests,
// the self-check and the benchmarks.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace migwatch::workload {

/// A thread that burns CPU until stopped, so that moving it off its CPU
/// always needs the stopper (it is running) or a queued-task move.
class SpinningThread {
 public:
  SpinningThread();
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
uint64_t FlipAffinity(pid_t tid, int cpu_a, int cpu_b, uint64_t flips);

/// Two threads that wake each other through pipes `rounds` times. Before
/// each wakeup the sleeping partner's allowed CPU is switched to the CPU it
/// did not run on last, so that every wakeup has to place it on another CPU.
/// Returns the tid of that partner (the "sleeper") through `sleeper_tid` as
/// soon as it exists, and the rounds completed.
uint64_t PingPongAcrossCpus(int cpu_a, int cpu_b, uint64_t rounds, std::atomic<pid_t>* sleeper_tid);

/// The calling thread's tid.
pid_t CurrentTid();

/// The CPUs this process may use, in ascending order.
std::vector<int> AllowedCpus();

}  // namespace migwatch::workload

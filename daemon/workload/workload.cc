#include "workload.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace migwatch::workload {

pid_t CurrentTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

SpinningThread::SpinningThread() {
  thread_ = std::thread([this] {
    tid_.store(CurrentTid());
    volatile uint64_t sink = 0;
    while (!stop_.load(std::memory_order_relaxed)) sink = sink + 1;
  });
  while (tid_.load() == 0) std::this_thread::yield();
}

SpinningThread::~SpinningThread() {
  stop_.store(true);
  thread_.join();
}

bool PinThread(pid_t tid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(tid, sizeof(set), &set) == 0;
}

uint64_t FlipAffinity(pid_t tid, int cpu_a, int cpu_b, uint64_t flips) {
  uint64_t done = 0;
  for (uint64_t i = 0; i < flips; ++i)
    if (PinThread(tid, i % 2 == 0 ? cpu_b : cpu_a)) ++done;
  return done;
}

// Waits until `tid` sleeps (state S in /proc), so that a change of its
// affinity moves nothing by itself.
static void WaitUntilSleeping(pid_t tid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
  for (;;) {
    FILE* f = fopen(path, "r");
    if (!f) return;
    char buf[512];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char* paren = strrchr(buf, ')');
    if (!paren || paren[1] == 0 || paren[2] == 'S') return;
    sched_yield();
  }
}

uint64_t PingPongAcrossCpus(int cpu_a, int cpu_b, uint64_t rounds, std::atomic<pid_t>* sleeper_tid) {
  int to_sleeper[2], to_driver[2];
  if (pipe(to_sleeper) || pipe(to_driver)) return 0;
  std::atomic<uint64_t> completed{0};
  std::thread sleeper([&] {
    sleeper_tid->store(CurrentTid());
    char c;
    for (;;) {
      if (read(to_sleeper[0], &c, 1) != 1 || c == 'q') break;
      if (write(to_driver[1], &c, 1) != 1) break;
    }
  });
  while (sleeper_tid->load() == 0) std::this_thread::yield();
  pid_t tid = sleeper_tid->load();
  // The driver stays on neither CPU's way: it pins itself to cpu_a, and the
  // sleeper alternates. The sleeper is asleep in read() whenever its mask
  // changes, so the change moves nothing; the wakeup that follows must.
  char c = 'x';
  for (uint64_t i = 0; i < rounds; ++i) {
    WaitUntilSleeping(tid);
    if (!PinThread(tid, i % 2 == 0 ? cpu_b : cpu_a)) break;
    if (write(to_sleeper[1], &c, 1) != 1 || read(to_driver[0], &c, 1) != 1) break;
    completed.fetch_add(1);
  }
  c = 'q';
  (void)!write(to_sleeper[1], &c, 1);
  sleeper.join();
  for (int fd : {to_sleeper[0], to_sleeper[1], to_driver[0], to_driver[1]}) close(fd);
  return completed.load();
}

}  // namespace migwatch::workload

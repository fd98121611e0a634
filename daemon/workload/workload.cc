#include "migwatch/workload/workload.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

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

SpinningThread::SpinningThread(bool yielding) {
  thread_ = std::thread([this, yielding] {
    tid_.store(CurrentTid());
    volatile uint64_t sink = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
      sink = sink + 1;
      if (yielding) sched_yield();
    }
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

uint64_t FlipAffinity(pid_t tid, int cpu_a, int cpu_b, uint64_t flips,
                      const std::function<void(int cpu)>& move_self) {
  uint64_t done = 0;
  cpu_set_t both;
  CPU_ZERO(&both);
  CPU_SET(cpu_a, &both);
  CPU_SET(cpu_b, &both);
  for (uint64_t i = 0; i < flips; ++i) {
    const int to = i % 2 == 0 ? cpu_b : cpu_a;
    if (move_self) {
      move_self(to);
      sched_setaffinity(0, sizeof(both), &both);  // allowed there: moves nothing
    }
    if (PinThread(tid, to)) ++done;
  }
  return done;
}

// voluntary_ctxt_switches of a thread of this process: it grows when the
// thread has left the CPU to sleep. The state letter in /proc turns to S
// earlier, while the thread is still on its way out of the CPU.
static uint64_t VoluntarySwitches(pid_t tid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
  FILE* f = fopen(path, "r");
  if (!f) return 0;
  char line[256];
  uint64_t n = 0;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "voluntary_ctxt_switches: %lu", &n) == 1) break;
  fclose(f);
  return n;
}

// Where a thread of this process sleeps: "S" and its wchan, "S" and "" when
// the kernel does not name it, or "" when it is not in state S.
static std::string SleepingIn(pid_t tid) {
  char path[64], buf[512] = {};
  snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
  FILE* f = fopen(path, "r");
  if (!f) return "";
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  const char* paren = strrchr(buf, ')');
  if (!paren || paren[1] != ' ' || paren[2] != 'S') return "";
  snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", tid);
  f = fopen(path, "r");
  if (!f) return "S";
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  return std::string("S ") + buf;
}

// Whether the sleeper is off its run queue, asleep in its pipe read
// ("pipe_read" or "anon_pipe_read"). The kernel names wchan only for a
// thread off its run queue and prints "0" otherwise: state S with "0" is
// also a thread preempted between announcing its sleep and switching out,
// still queued, which a mask change would move by itself. "0" is trusted
// only on kernels that never name it (no kallsyms).
bool PingPong::AsleepInPipeRead(pid_t tid) const {
  const std::string where = SleepingIn(tid);
  if (where.find("pipe_read") != std::string::npos) return true;
  return !wchan_named_ && where.rfind("S", 0) == 0;
}

PingPong::PingPong(int cpu_a, int cpu_b) : cpu_a_(cpu_a), cpu_b_(cpu_b) {
  if (pipe(to_sleeper_) || pipe(to_driver_)) return;
  sleeper_ = std::thread([this] {
    sleeper_tid_.store(CurrentTid());
    char c;
    for (;;) {
      if (read(to_sleeper_[0], &c, 1) != 1 || c == 'q') break;
      if (write(to_driver_[1], &c, 1) != 1) break;
    }
  });
  while (sleeper_tid_.load() == 0) std::this_thread::yield();
  // Its first block in read(): from here on it is off-CPU between rounds.
  while ((switches_ = VoluntarySwitches(sleeper_tid_.load())) == 0) sched_yield();
  // Whether this kernel names wchan: the sleeper blocks in its read now.
  for (int i = 0; i < 200 && !wchan_named_; ++i) {
    wchan_named_ = SleepingIn(sleeper_tid_.load()).find("pipe_read") != std::string::npos;
    if (!wchan_named_) usleep(1000);
  }
}

uint64_t PingPong::Run(uint64_t rounds) {
  const pid_t tid = sleeper_tid_.load();
  uint64_t completed = 0;
  char c = 'x';
  for (uint64_t i = 0; i < rounds; ++i, ++done_) {
    if (done_ > 0) {
      // It replied; wait until it has blocked in read() again.
      while (VoluntarySwitches(tid) < switches_ + 1) sched_yield();
      // The count grows in __schedule() just before the switch; until the
      // switch completes the kernel still sees the thread on its CPU, and
      // a mask change then would move it by itself. A sleep elsewhere (a
      // lock) would count too: wait for it to be asleep in the pipe read.
      do {
        usleep(50);
      } while (!AsleepInPipeRead(tid));
      switches_ = VoluntarySwitches(tid);
    }
    if (!PinThread(tid, done_ % 2 == 0 ? cpu_b_ : cpu_a_)) break;
    if (write(to_sleeper_[1], &c, 1) != 1 || read(to_driver_[0], &c, 1) != 1) break;
    ++completed;
  }
  return completed;
}

PingPong::~PingPong() {
  if (sleeper_.joinable()) {
    char c = 'q';
    (void)!write(to_sleeper_[1], &c, 1);
    sleeper_.join();
  }
  for (int fd : {to_sleeper_[0], to_sleeper_[1], to_driver_[0], to_driver_[1]})
    if (fd >= 0) close(fd);
}

}  // namespace migwatch::workload

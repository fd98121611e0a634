// mw_workload: generates migrations the tests can predict, from a separate
// process (so that it can carry its own name, or pose as a QEMU VM).
//
//   mw_workload affinity-storm --flips N [--name COMM] [--cpus A,B]
//   mw_workload pingpong --rounds N
//   mw_workload spinners --threads K --seconds S [--cpus A,B,...] [--until-moved-within T]
//   mw_workload exec-loop --count N
//   mw_workload names --count N [--prefix P]
//   mw_workload churn --threads N --processes M
//   mw_workload numa-remote --node X --mib M --away A,... --free F,... --cycles K --seconds S
//   mw_workload sleepers --threads N [--wake-seconds S]
//   qemu-system-x86_64 -name guest=NAME,debug-threads=on [-accel A]...   (argv[0] decides)
//
// Results are printed as key=value lines on stdout.
#include <linux/mempolicy.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "migwatch/kernel/proc/sched.h"
#include "migwatch/workload/workload.h"

using namespace migwatch::workload;
using Clock = std::chrono::steady_clock;

namespace {

std::pair<int, int> TwoCpus(const std::string& spec) {
  if (!spec.empty()) {
    int a = -1, b = -1;
    if (sscanf(spec.c_str(), "%d,%d", &a, &b) == 2 && a >= 0 && b >= 0 && a != b) return {a, b};
    std::cerr << "mw_workload: --cpus wants two different CPUs like 0,1, not '" << spec << "'\n";
    exit(2);
  }
  auto cpus = AllowedCpus();
  if (cpus.size() < 2) {
    std::cerr << "mw_workload: needs two CPUs\n";
    exit(2);
  }
  return {cpus[0], cpus[1]};
}

// With --hold, a workload waits for "go" on stdin once its threads exist
// (so that a test can read their counters first), and for "quit" or end of
// input after its results (so that they can be read again after).
bool g_hold = false;

void WaitFor(const char* word) {
  if (!g_hold) return;
  std::cout << "waiting=" << word << std::endl;
  std::string line;
  while (std::getline(std::cin, line))
    if (line == word) return;
}

void SetComm(const std::string& name) {
  if (!name.empty()) prctl(PR_SET_NAME, name.c_str(), 0, 0, 0);
}

// A separate process that pins a thread of ours to a CPU on request, so that
// the flipper's own moves are not its own sched_setaffinity calls: with
// --while-running, the flipper's changing calls are then exactly its flips.
class Mover {
 public:
  explicit Mover(pid_t tid) {
    if (pipe(request_) || pipe(reply_)) exit(1);
    // Until it renames itself the child has our name, and a move it made
    // then would count under our name (rightly) but not in our process's
    // se.nr_migrations: it starts on this CPU alone, and takes our CPUs
    // back once it has its own name.
    cpu_set_t ours, here;
    if (sched_getaffinity(0, sizeof(ours), &ours)) exit(1);
    CPU_ZERO(&here);
    CPU_SET(sched_getcpu(), &here);
    sched_setaffinity(0, sizeof(here), &here);
    pid_ = fork();
    if (pid_ != 0) sched_setaffinity(0, sizeof(ours), &ours);
    if (pid_ == 0) {
      SetComm("mw-mover");
      sched_setaffinity(0, sizeof(ours), &ours);
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      close(request_[1]);  // or reading request_[0] never sees the end
      close(reply_[0]);
      int cpu;
      while (read(request_[0], &cpu, sizeof(cpu)) == sizeof(cpu)) {
        PinThread(tid, cpu);
        if (write(reply_[1], &cpu, sizeof(cpu)) != sizeof(cpu)) break;
      }
      _exit(0);
    }
    close(request_[0]);
    close(reply_[1]);
  }
  ~Mover() {
    close(request_[1]);
    close(reply_[0]);
    waitpid(pid_, nullptr, 0);
  }
  // The caller sleeps in read() while its mask changes and moves when the
  // reply wakes it.
  void Move(int cpu) {
    if (write(request_[1], &cpu, sizeof(cpu)) != sizeof(cpu) || read(reply_[0], &cpu, sizeof(cpu)) != sizeof(cpu))
      exit(1);
  }

 private:
  pid_t pid_ = -1;
  int request_[2], reply_[2];
};

int AffinityStorm(uint64_t flips, const std::string& name, const std::string& cpus, bool while_running) {
  auto [a, b] = TwoCpus(cpus);
  SetComm(name);  // the main thread is the leader: the requester's name
  SpinningThread spinner(while_running);
  PinThread(spinner.tid(), a);
  std::unique_ptr<Mover> mover;
  if (while_running) mover = std::make_unique<Mover>(CurrentTid());
  std::cout << "spinner_tid=" << spinner.tid() << std::endl;
  WaitFor("go");
  auto start = Clock::now();
  uint64_t done = FlipAffinity(spinner.tid(), a, b, flips,
                               mover ? std::function<void(int)>([&](int cpu) { mover->Move(cpu); }) : nullptr);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << "flips=" << done << "\nseconds=" << seconds << "\nflips_per_second=" << done / seconds << std::endl;
  WaitFor("quit");
  return done == flips ? 0 : 1;
}

int RunPingPong(uint64_t rounds, const std::string& cpus) {
  auto [a, b] = TwoCpus(cpus);
  PingPong pingpong(a, b);
  std::cout << "sleeper_tid=" << pingpong.sleeper_tid() << std::endl;
  WaitFor("go");
  auto start = Clock::now();
  uint64_t done = pingpong.Run(rounds);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << "rounds=" << done << "\nseconds=" << seconds
            << "\nrounds_per_second=" << done / seconds << std::endl;
  WaitFor("quit");
  return done == rounds ? 0 : 1;
}

// Allows `tid` on exactly `cpus`.
bool AllowThread(pid_t tid, const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) CPU_SET(cpu, &set);
  return sched_setaffinity(tid, sizeof(set), &set) == 0;
}

// With `cpus`, the spinners run there whatever CPUs the process started on:
// a test can keep its launcher on one CPU (so nothing migrates before exec
// names the process) and still spread the spinners, or pin them all to a CPU
// it takes offline. With `until_moved_within`, they spin on after `seconds`
// until a thread of the process has migrated, for at most that many seconds
// more: on a host whose other work keeps the load even, the balancer can
// leave one spinner more than there are CPUs where they are for seconds.
int Spinners(unsigned threads, double seconds, const std::vector<int>& cpus, double until_moved_within) {
  std::vector<std::unique_ptr<SpinningThread>> spinners;
  for (unsigned i = 0; i < threads; ++i) {
    spinners.push_back(std::make_unique<SpinningThread>());
    if (!cpus.empty() && !AllowThread(spinners.back()->tid(), cpus)) {
      std::perror("mw_workload: sched_setaffinity");
      return 1;
    }
  }
  WaitFor("go");
  const auto own_migrations = [] { return migwatch::ReadLiveThreadMigrations(getpid()).value_or(0); };
  const uint64_t before = own_migrations();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(until_moved_within);
  while (own_migrations() == before && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::cout << "threads=" << threads << std::endl;
  WaitFor("quit");  // still spinning: a test can take their CPU away meanwhile
  return 0;
}

int ExecLoop(unsigned count) {
  for (unsigned i = 0; i < count; ++i) {
    pid_t child = fork();
    if (child == 0) {
      execl("/bin/true", "true", nullptr);
      _exit(127);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }
  std::cout << "execs=" << count << std::endl;
  return 0;
}

// Distinct short-lived processes, each of which moves itself once, so each
// shows up as a process label.
int Names(unsigned count, const std::string& prefix) {
  auto cpus = AllowedCpus();
  if (cpus.size() < 2) return 2;
  for (unsigned i = 0; i < count; ++i) {
    pid_t child = fork();
    if (child == 0) {
      SetComm(prefix + std::to_string(i));
      PinThread(0, cpus[0]);
      PinThread(0, cpus[1]);
      _exit(0);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) < 0) return 1;
  }
  std::cout << "processes=" << count << std::endl;
  return 0;
}

// Many short-lived threads and processes, each moved once.
int Churn(unsigned threads, unsigned processes) {
  auto cpus = AllowedCpus();
  if (cpus.size() < 2) return 2;
  for (unsigned i = 0; i < threads; ++i) {
    std::thread t([&] {
      PinThread(0, cpus[i % 2]);
      PinThread(0, cpus[(i + 1) % 2]);
    });
    t.join();
  }
  if (Names(processes, "mw-churn-") != 0) return 1;
  std::cout << "threads=" << threads << std::endl;
  return 0;
}

// Moves itself between two CPUs, then execs this binary as a QEMU process
// named `name`, as libvirt's forked child does: the same process, first
// under another name.
int BecomeVm(const std::string& name) {
  auto [a, b] = TwoCpus("");
  PinThread(0, a);
  PinThread(0, b);
  cpu_set_t all;
  CPU_ZERO(&all);
  CPU_SET(a, &all);
  CPU_SET(b, &all);
  sched_setaffinity(0, sizeof(all), &all);
  std::cout << "pid=" << getpid() << std::endl;
  WaitFor("go");
  const std::string guest = "guest=" + name + ",debug-threads=on";
  execl("/proc/self/exe", "qemu-system-x86_64", "-name", guest.c_str(), nullptr);
  return 127;
}

// The accelerator each vCPU thread is named after ("CPU <n>/<ACCEL>"): the
// i-th -accel option names vCPU i, KVM where there is none. (Real QEMU takes
// the first -accel that works for all its vCPUs; one fake VM can so show
// both spellings.)
std::vector<std::string> VcpuAccelerators(int argc, char** argv, size_t vcpus) {
  std::vector<std::string> accelerators;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) != "-accel") continue;
    std::string name = argv[++i];
    for (char& c : name) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
    accelerators.push_back(name);
  }
  accelerators.resize(vcpus, "KVM");
  return accelerators;
}

// Poses as a QEMU process: named vCPU threads and a live migration thread,
// driven by commands on stdin so that a test controls every step:
//   flip N   flip each vCPU thread's affinity N times -> "flipped=<calls>"
//   share    pin both vCPU threads to one CPU, where they wait for each
//            other                                  -> "shared_cpu=<cpu>"
//   end      end the live migration thread          -> "migration_ended"
//   end_vcpus  end the vCPU threads, each reading its own run delay last
//                                                   -> "vcpu_delay_ns=<sum>"
//   quit
int FakeVm(int argc, char** argv) {
  auto [a, b] = TwoCpus("");
  std::atomic<bool> stop{false}, end_migration{false};
  std::atomic<pid_t> tids[3] = {0, 0, 0};
  std::atomic<uint64_t> final_delays[2] = {0, 0};
  std::vector<std::thread> threads;
  const std::vector<std::string> accelerators = VcpuAccelerators(argc, argv, 2);
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      SetComm("CPU " + std::to_string(i) + "/" + accelerators[i]);
      tids[i] = CurrentTid();
      volatile uint64_t sink = 0;
      while (!stop.load(std::memory_order_relaxed)) sink = sink + 1;
      // Field 2 of schedstat: the time it waited for a CPU, as of now.
      std::ifstream schedstat("/proc/thread-self/schedstat");
      uint64_t run_ns = 0, delay_ns = 0;
      schedstat >> run_ns >> delay_ns;
      final_delays[i] = delay_ns;
    });
  }
  std::thread migration([&] {
    SetComm("live_migration");
    tids[2] = CurrentTid();
    while (!end_migration.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  for (auto& t : tids)
    while (t.load() == 0) std::this_thread::yield();
  PinThread(tids[0], a);
  PinThread(tids[1], b);
  std::cout << "vcpu0_tid=" << tids[0] << "\nvcpu1_tid=" << tids[1] << "\nmigration_tid=" << tids[2] << std::endl;
  std::string cmd;
  while (std::cin >> cmd) {
    if (cmd == "flip") {
      uint64_t n = 0;
      std::cin >> n;
      uint64_t done = FlipAffinity(tids[0], a, b, n) + FlipAffinity(tids[1], b, a, n);
      std::cout << "flipped=" << done << std::endl;
    } else if (cmd == "share") {
      PinThread(tids[0], a);
      PinThread(tids[1], a);
      std::cout << "shared_cpu=" << a << std::endl;
    } else if (cmd == "end") {
      end_migration = true;
      migration.join();
      std::cout << "migration_ended=1" << std::endl;
    } else if (cmd == "end_vcpus") {
      stop = true;
      for (auto& t : threads) t.join();
      threads.clear();
      std::cout << "vcpu_delay_ns=" << final_delays[0] + final_delays[1] << std::endl;
    } else if (cmd == "quit") {
      break;
    }
  }
  stop = true;
  end_migration = true;
  if (migration.joinable()) migration.join();
  for (auto& t : threads) t.join();
  return 0;
}

// Memory on NUMA node `node`, touched by a thread that starts each of
// `cycles` cycles by moving itself to the `away` CPUs and then, for
// `seconds`, may also run on the `free` ones. Automatic NUMA balancing
// (kernel.numa_balancing=1) sees its faults on `node` and moves it there
// (sched_move_numa) if `free` has CPUs of that node. Its moves to `away`
// are affinity changes of its own.
//
// The thread's policy binds its memory to `node` with
// MPOL_F_NUMA_BALANCING (Linux 5.12+): NUMA balancing then scans it (it
// skips memory under a policy without MPOL_F_MOF, which a plain mbind() or
// MPOL_BIND gives) but never moves a page off the bound nodes, so the task
// must move to the memory rather than the memory to the task.
int NumaRemote(int node, unsigned mib, const std::vector<int>& away, const std::vector<int>& free_cpus,
               unsigned cycles, double seconds) {
  const size_t bytes = size_t{mib} << 20, page = sysconf(_SC_PAGESIZE);
  auto* memory = static_cast<volatile char*>(
      mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (memory == MAP_FAILED) {
    std::perror("mw_workload: mmap");
    return 1;
  }
  unsigned long nodemask[4] = {};
  if (node < 0 || node >= static_cast<int>(8 * sizeof(nodemask))) return 2;
  nodemask[node / (8 * sizeof(long))] = 1UL << (node % (8 * sizeof(long)));
  if (syscall(SYS_set_mempolicy, MPOL_BIND | MPOL_F_NUMA_BALANCING, nodemask, 8 * sizeof(nodemask))) {
    std::perror("mw_workload: set_mempolicy");
    return 1;
  }
  auto touch = [&] {
    for (size_t offset = 0; offset < bytes; offset += page) memory[offset] = memory[offset] + 1;
  };
  if (!AllowThread(0, away)) {
    std::perror("mw_workload: sched_setaffinity");
    return 1;
  }
  touch();  // now: every page is on `node`
  std::cout << "tid=" << CurrentTid() << std::endl;
  WaitFor("go");
  uint64_t passes = 0;
  for (unsigned cycle = 0; cycle < cycles; ++cycle) {
    if (!AllowThread(0, away) || !AllowThread(0, free_cpus)) {
      std::perror("mw_workload: sched_setaffinity");
      return 1;
    }
    auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) {
      touch();
      ++passes;
    }
  }
  std::cout << "cycles=" << cycles << "\npasses=" << passes << "\ncpu=" << sched_getcpu() << std::endl;
  WaitFor("quit");
  return 0;
}

// `threads` threads that block (or wake every `wake_seconds`), each with a
// small stack: a host's many mostly idle threads. Ready once all exist.
int Sleepers(unsigned threads, double wake_seconds) {
  static double period;
  period = wake_seconds;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  for (unsigned i = 0; i < threads; ++i) {
    pthread_t thread;
    int error = pthread_create(
        &thread, &attr,
        [](void*) -> void* {
          for (;;) {
            if (period > 0)
              std::this_thread::sleep_for(std::chrono::duration<double>(period));
            else
              pause();
          }
          return nullptr;
        },
        nullptr);
    if (error) {
      std::cerr << "mw_workload: thread " << i << ": " << std::strerror(error) << "\n";
      return 1;
    }
  }
  std::cout << "threads=" << threads << std::endl;
  WaitFor("go");
  WaitFor("quit");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A test that dies (or is killed) must not leave its storm running.
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  std::string self = argv[0];
  // Started on one CPU so that execve() could not move it (tests/bpf/subprocess.cc):
  // the launcher's CPUs again, now that it has its own name.
  if (const char* cpus = getenv("MW_WORKLOAD_CPUS")) {
    std::vector<int> allowed;
    std::stringstream list(cpus);
    for (std::string cpu; std::getline(list, cpu, ',');)
      if (!cpu.empty()) allowed.push_back(std::stoi(cpu));
    if (!allowed.empty()) AllowThread(0, allowed);
    unsetenv("MW_WORKLOAD_CPUS");
  }
  if (self.substr(self.rfind('/') + 1).rfind("qemu-system-", 0) == 0) return FakeVm(argc, argv);

  CLI::App app{"Generates migrations that the tests can predict.", "mw_workload"};
  app.require_subcommand(1, 1);
  app.add_flag("--hold", g_hold, "Wait for 'go' on stdin before the work and 'quit' after it");
  uint64_t flips = 10000, rounds = 10000;
  unsigned threads = 4, count = 100, processes = 0;
  bool while_running = false;
  double seconds = 5;
  std::string name, cpus, prefix = "mw-name-";
  auto* storm = app.add_subcommand("affinity-storm", "Flip a spinning thread's affinity between two CPUs");
  storm->add_option("--flips", flips)->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  storm->add_option("--name", name, "comm of the flipping (leader) thread");
  storm->add_option("--cpus", cpus, "the two CPUs, e.g. 0,1");
  storm->add_flag("--while-running", while_running,
                  "move the flipper to the destination first, so that every flip finds the spinner running");
  auto* pingpong = app.add_subcommand("pingpong", "Wakeups that must each move the woken thread");
  pingpong->add_option("--rounds", rounds)->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  pingpong->add_option("--cpus", cpus);
  auto* spinners = app.add_subcommand("spinners", "Unpinned spinning threads");
  spinners->add_option("--threads", threads)->check(CLI::Range(1u, 4096u));
  spinners->add_option("--seconds", seconds)->check(CLI::Range(0.0, 86400.0));
  double until_moved_within = 0;
  spinners->add_option("--until-moved-within", until_moved_within,
                       "then spin until one of them has migrated, for at most this many seconds more")
      ->check(CLI::Range(0.0, 86400.0));
  std::vector<int> spinner_cpus;
  spinners->add_option("--cpus", spinner_cpus, "CPUs the spinners may run on, e.g. 0,1,2,3 (default: the process's)")
      ->delimiter(',')
      ->check(CLI::Range(0, CPU_SETSIZE - 1));
  auto* exec_loop = app.add_subcommand("exec-loop", "fork and exec /bin/true repeatedly");
  exec_loop->add_option("--count", count)->check(CLI::Range(1u, 10000000u));
  auto* names = app.add_subcommand("names", "Distinct short-lived processes that each migrate once");
  names->add_option("--count", count)->check(CLI::Range(1u, 10000000u));
  names->add_option("--prefix", prefix);
  auto* become_vm = app.add_subcommand("become-vm", "Migrate under this name, then exec as a QEMU VM");
  become_vm->add_option("--name", name, "the VM's name")->required();
  auto* churn = app.add_subcommand("churn", "Short-lived threads and processes that each migrate once");
  churn->add_option("--threads", threads)->check(CLI::Range(0u, 10000000u));
  churn->add_option("--processes", processes)->check(CLI::Range(0u, 10000000u));
  int node = 0;
  unsigned mib = 64, cycles = 1;
  std::vector<int> away, free_cpus;
  auto* numa_remote = app.add_subcommand("numa-remote", "Touch memory bound to a node from CPUs of another");
  numa_remote->add_option("--node", node, "the node the memory is bound to")->required();
  numa_remote->add_option("--mib", mib)->check(CLI::Range(1u, 65536u));
  numa_remote->add_option("--away", away, "CPUs each cycle starts on, e.g. 2,3")->delimiter(',')->required();
  numa_remote->add_option("--free", free_cpus, "CPUs it may then use")->delimiter(',')->required();
  numa_remote->add_option("--cycles", cycles)->check(CLI::Range(1u, 100000u));
  numa_remote->add_option("--seconds", seconds, "length of each cycle")->check(CLI::Range(0.0, 86400.0));
  auto* sleepers = app.add_subcommand("sleepers", "Many threads that sleep");
  double wake_seconds = 0;
  sleepers->add_option("--threads", threads)->check(CLI::Range(1u, 1000000u));
  sleepers->add_option("--wake-seconds", wake_seconds, "each thread wakes this often (default: never)");
  CLI11_PARSE(app, argc, argv);

  if (*numa_remote) return NumaRemote(node, mib, away, free_cpus, cycles, seconds);
  if (*sleepers) return Sleepers(threads, wake_seconds);

  if (*storm) return AffinityStorm(flips, name, cpus, while_running);
  if (*pingpong) return RunPingPong(rounds, cpus);
  if (*spinners) return Spinners(threads, seconds, spinner_cpus, until_moved_within);
  if (*exec_loop) return ExecLoop(count);
  if (*names) return Names(count, prefix);
  if (*become_vm) return BecomeVm(name);
  return Churn(threads, processes);
}

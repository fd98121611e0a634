// mw_bench_reference: attaches the empty reference programs
// (bench_reference.bpf.c) and keeps the kernel's BPF run-time statistics
// on while it runs, so that the benchmark can read migwatch's per-event cost
// next to the cost of doing nothing on the same hooks.
//
// Holding a BPF_ENABLE_STATS descriptor turns the statistics on like
// kernel.bpf_stats_enabled=1 does, but only as long as this process lives:
// an interrupted benchmark never leaves them on.
//
// Prints "ready=1" once attached and runs until SIGINT or SIGTERM.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "bench_reference.skel.h"

int main() {
  // SIGINT and SIGTERM end the sigwait() below; it needs them blocked.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);

  int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (stats_fd < 0) {
    std::fprintf(stderr, "mw_bench_reference: cannot enable BPF run-time statistics: %s\n", std::strerror(errno));
    return 1;
  }
  bench_reference_bpf* skel = bench_reference_bpf__open_and_load();
  if (!skel) {
    std::fprintf(stderr, "mw_bench_reference: cannot load the reference programs: %s\n", std::strerror(errno));
    return 1;
  }
  if (int err = bench_reference_bpf__attach(skel); err != 0) {
    std::fprintf(stderr, "mw_bench_reference: cannot attach the reference programs: %s\n", std::strerror(-err));
    bench_reference_bpf__destroy(skel);
    return 1;
  }
  std::printf("ready=1\n");
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&stop, &signal_number);
  bench_reference_bpf__destroy(skel);
  close(stats_fd);
  return 0;
}

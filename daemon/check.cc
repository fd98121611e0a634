// migwatch check: can this host run migwatch, and does it count right?
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "migwatch/commands.h"
#include "migwatch/kernel_info.h"
#include "migwatch/probes.h"
#include "migwatch/proc/sched.h"
#include "migwatch/proc/status.h"
#include "migwatch/snapshot.h"
#include "migwatch/workload/workload.h"

namespace migwatch {
namespace {

constexpr int kCapSysAdmin = 21, kCapPerfmon = 38, kCapBpf = 39;

struct Report {
  bool ok = true;
  void Line(bool pass, const std::string& what, const std::string& detail) {
    std::printf("  [%s] %-12s %s\n", pass ? " ok " : "FAIL", what.c_str(), detail.c_str());
    ok &= pass;
  }
  void Info(const std::string& what, const std::string& detail) {
    std::printf("  [info] %-12s %s\n", what.c_str(), detail.c_str());
  }
};

}  // namespace

int RunCheck(const CheckOptions& options) {
  Report report;
  std::printf("migwatch check (%s)\n\n", VersionString().c_str());

  struct utsname u;
  uname(&u);
  report.Info("kernel", std::string(u.release) + " " + u.machine);

  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux) {
    report.Line(true, "BTF", "/sys/kernel/btf/vmlinux, " + std::to_string(btf__type_cnt(vmlinux)) + " types");
    btf__free(vmlinux);
  } else {
    report.Line(false, "BTF", "no kernel BTF (/sys/kernel/btf/vmlinux): CO-RE programs cannot be relocated; "
                              "a kernel built with CONFIG_DEBUG_INFO_BTF=y is needed");
  }

  uint64_t caps = 0;
  if (auto field = ReadStatusField(getpid(), "CapEff"))
    if (auto mask = ParseCapabilityMask(*field)) caps = *mask;
  auto has = [&](int cap) { return (caps >> cap) & 1; };
  bool can_bpf = (has(kCapBpf) && has(kCapPerfmon)) || has(kCapSysAdmin);
  char capline[160];
  snprintf(capline, sizeof(capline), "euid %d, CAP_BPF %s, CAP_PERFMON %s, CAP_SYS_ADMIN %s", geteuid(),
           has(kCapBpf) ? "yes" : "no", has(kCapPerfmon) ? "yes" : "no", has(kCapSysAdmin) ? "yes" : "no");
  report.Line(can_bpf, "privileges",
              can_bpf ? capline
                      : std::string(capline) + ": migwatch needs root, or CAP_BPF and CAP_PERFMON "
                                               "(CAP_SYS_ADMIN on kernels before 5.8)");
  if (!can_bpf) {
    std::printf("\nFAIL: BPF programs cannot be loaded without these privileges.\n");
    return 1;
  }

  std::string tracefs_error;
  auto tracefs = EnsureTracefs(&tracefs_error);
  report.Line(tracefs.has_value(), "tracefs",
              tracefs ? *tracefs : tracefs_error + " (sched_setaffinity and exec attribution need it)");

  // Probe logs would interleave with the report; the table says it all.
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::err);
  std::string error;
  auto probes = Probes::Load(options.common.probes, &error);
  spdlog::set_level(level);
  if (!probes) {
    report.Line(false, "probes", error);
    std::printf("\nFAIL\n");
    return 1;
  }
  std::printf("\n  %-30s %-11s %s\n", "probe", "mode", "why not a better mode");
  for (const auto& p : probes->status()) {
    std::printf("  %-30s %-11s %s%s\n", p.name.c_str(), ProbeModeName(p.mode), p.required ? "(required) " : "",
                p.why_not.c_str());
    if (p.required && p.mode == MW_MODE_NONE) report.ok = false;
  }
  std::printf("\n");

  auto cpus = workload::AllowedCpus();
  if (cpus.size() < 2) {
    report.Line(false, "storm", "needs two CPUs to move a thread between");
  } else {
    workload::SpinningThread spinner;
    const pid_t tid = spinner.tid();
    workload::PinThread(tid, cpus[0]);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto kernel0 = ReadNrMigrations(getpid(), tid);
    ThreadCounts before;
    ReadThread(*probes, tid, &before);
    CounterSnapshot c0, c1;
    ReadCounters(*probes, &c0);
    auto start = std::chrono::steady_clock::now();
    uint64_t flips = workload::FlipAffinity(tid, cpus[0], cpus[1], options.storm_flips);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ReadCounters(*probes, &c1);
    ThreadCounts after;
    ReadThread(*probes, tid, &after);
    auto kernel1 = ReadNrMigrations(getpid(), tid);
    uint64_t counted = after.total() - before.total();
    uint64_t truth = kernel0 && kernel1 ? *kernel1 - *kernel0 : 0;
    char detail[200];
    snprintf(detail, sizeof(detail), "%lu affinity flips in %.2fs: migwatch counted %lu, kernel se.nr_migrations %lu",
             flips, secs, counted, truth);
    report.Line(kernel0 && kernel1 && counted == truth && truth >= flips, "storm", detail);
    double stopper_ns = 0;
    for (int cpu : {cpus[0], cpus[1]}) stopper_ns += c1.stopper[cpu].run_ns - c0.stopper[cpu].run_ns;
    snprintf(detail, sizeof(detail), "migration/%d and migration/%d ran %.3f ms for it", cpus[0], cpus[1],
             stopper_ns / 1e6);
    report.Line(stopper_ns > 0, "stopper", detail);
  }
  std::printf("\n%s\n", report.ok ? "PASS: migwatch can run on this host." : "FAIL");
  return report.ok ? 0 : 1;
}

}  // namespace migwatch

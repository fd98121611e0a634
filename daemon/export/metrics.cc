#include "migwatch/export/metrics.h"

#include <bpf/libbpf.h>
#include <prometheus/metric_family.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "migwatch/model/labels.h"
#include "migwatch/kernel/proc/stat.h"
#include "migwatch/model/session.h"

namespace migwatch {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

constexpr double kNsPerSecond = 1e9;

// One family under construction.
class Family {
 public:
  Family(std::string name, std::string help, MetricType type) {
    family_.name = std::move(name);
    family_.help = std::move(help);
    family_.type = type;
  }
  Family& Add(Labels labels, double value) {
    ClientMetric m;
    m.label = std::move(labels);
    if (family_.type == MetricType::Counter)
      m.counter.value = value;
    else
      m.gauge.value = value;
    family_.metric.push_back(std::move(m));
    return *this;
  }
  MetricFamily Take() { return std::move(family_); }

 private:
  MetricFamily family_;
};

void AddCounterFamilies(const CounterSnapshot& s, std::vector<MetricFamily>* out) {
  Family reasons("migwatch_migrations_total", "Task migrations between CPUs, by the path that moved the task.",
                 MetricType::Counter);
  for (int r = 0; r < MW_REASON_COUNT; ++r)
    reasons.Add({{"reason", std::string(ReasonName(r))}}, s.host.migrations[r]);
  out->push_back(reasons.Take());

  Family cpus("migwatch_cpu_migrations_total", "Task migrations into and out of each CPU.", MetricType::Counter);
  for (size_t cpu = 0; cpu < s.cpu_moves.size(); ++cpu) {
    cpus.Add({{"cpu", std::to_string(cpu)}, {"direction", "in"}}, s.cpu_moves[cpu].in);
    cpus.Add({{"cpu", std::to_string(cpu)}, {"direction", "out"}}, s.cpu_moves[cpu].out);
  }
  out->push_back(cpus.Take());

  Family nodes("migwatch_node_migrations_total", "Task migrations between NUMA nodes (equal nodes: within a node).",
               MetricType::Counter);
  for (unsigned from = 0; from < s.nr_nodes; ++from)
    for (unsigned to = 0; to < s.nr_nodes; ++to)
      nodes.Add({{"from_node", std::to_string(from)}, {"to_node", std::to_string(to)}},
                s.node_moves[from * s.nr_nodes + to]);
  out->push_back(nodes.Take());

  Family stopper_cpu("migwatch_stopper_cpu_seconds_total",
                     "On-CPU time of each CPU's migration/N stopper thread, as the scheduler accounts it.",
                     MetricType::Counter);
  Family stopper_runs("migwatch_stopper_runs_total", "On-CPU intervals of each CPU's migration/N stopper thread.",
                      MetricType::Counter);
  for (size_t cpu = 0; cpu < s.cpus.size(); ++cpu) {
    stopper_cpu.Add({{"cpu", std::to_string(cpu)}}, s.cpus[cpu].stopper_run_ns / kNsPerSecond);
    stopper_runs.Add({{"cpu", std::to_string(cpu)}}, s.cpus[cpu].stopper_runs);
  }
  out->push_back(stopper_cpu.Take());
  out->push_back(stopper_runs.Take());

  Family work_seconds("migwatch_stopper_work_seconds_total",
                      "Stopper thread on-CPU time, by the work it ran.", MetricType::Counter);
  Family work_count("migwatch_stopper_work_runs_total", "Stopper thread on-CPU intervals, by the work it ran.",
                    MetricType::Counter);
  for (int w = MW_WORK_NONE + 1; w < MW_WORK_COUNT; ++w) {
    work_seconds.Add({{"work", std::string(WorkName(w))}}, s.host.stopper_work_ns[w] / kNsPerSecond);
    work_count.Add({{"work", std::string(WorkName(w))}}, s.host.stopper_work_runs[w]);
  }
  out->push_back(work_seconds.Take());
  out->push_back(work_count.Take());

  Family drops("migwatch_events_dropped_total",
               "Detail records that could not be kept (counts are never dropped), by where.", MetricType::Counter);
  for (int d = 0; d < MW_DROP_COUNT; ++d) drops.Add({{"buffer", std::string(DropName(d))}}, s.host.drops[d]);
  out->push_back(drops.Take());

  out->push_back(Family("migwatch_same_cpu_migrate_events_total",
                        "sched_migrate_task events whose source CPU equals the destination (not migrations).",
                        MetricType::Counter)
                     .Add({}, s.host.same_cpu_events)
                     .Take());
}

void AddMissFamilies(const std::vector<ProgramMisses>& misses, std::vector<MetricFamily>* out) {
  Family family("migwatch_bpf_program_misses_total",
                "Events a BPF program was not run for because it was already running on that CPU "
                "(the kernel's recursion_misses; 0 where the kernel does not report them).",
                MetricType::Counter);
  for (const auto& m : misses) family.Add({{"program", m.program}}, m.misses);
  out->push_back(family.Take());
}

void AddAttributionFamilies(const AttributionTotals& t, std::vector<MetricFamily>* out) {
  Family processes("migwatch_process_migrations_total",
                   "Task migrations by process (thread-group leader comm) and reason.", MetricType::Counter);
  for (const auto& [name, counts] : t.process_migrations)
    for (int r = 0; r < MW_REASON_COUNT; ++r)
      if (counts[r]) processes.Add({{"process", name}, {"reason", std::string(ReasonName(r))}}, counts[r]);
  out->push_back(processes.Take());

  Family process_stopper("migwatch_process_stopper_cpu_seconds_total",
                         "Stopper thread on-CPU time spent moving a process's threads.", MetricType::Counter);
  for (const auto& [name, ns] : t.process_stopper_ns)
    if (ns) process_stopper.Add({{"process", name}}, ns / kNsPerSecond);
  out->push_back(process_stopper.Take());

  Family requester_seconds("migwatch_stopper_requester_seconds_total",
                           "Stopper thread on-CPU time, by the process that queued the work "
                           "(kernel: queued from interrupt context).",
                           MetricType::Counter);
  for (const auto& [name, ns] : t.requester_stopper_ns) requester_seconds.Add({{"requester", name}}, ns / kNsPerSecond);
  out->push_back(requester_seconds.Take());

  Family requester_runs("migwatch_stopper_requester_runs_total",
                        "Stopper thread on-CPU intervals, by the process that queued the work.", MetricType::Counter);
  for (const auto& [name, runs] : t.requester_stopper_runs) requester_runs.Add({{"requester", name}}, runs);
  out->push_back(requester_runs.Take());

  Family affinity("migwatch_affinity_changes_total",
                  "Affinity changes (sched_setaffinity, cpuset writes) that forced a running or queued task off "
                  "its CPU, by the process that made them.",
                  MetricType::Counter);
  for (const auto& [name, n] : t.affinity_changes)
    if (n) affinity.Add({{"requester", name}}, n);
  out->push_back(affinity.Take());

  Family vms("migwatch_vm_migrations_total", "Task migrations of QEMU processes' threads, by VM and reason.",
             MetricType::Counter);
  for (const auto& [vm, counts] : t.vm_migrations)
    for (int r = 0; r < MW_REASON_COUNT; ++r)
      if (counts[r]) vms.Add({{"vm", vm}, {"reason", std::string(ReasonName(r))}}, counts[r]);
  out->push_back(vms.Take());

  Family vm_stopper("migwatch_vm_stopper_cpu_seconds_total",
                    "Stopper thread on-CPU time spent moving a VM's threads.", MetricType::Counter);
  for (const auto& [vm, ns] : t.vm_stopper_ns) vm_stopper.Add({{"vm", vm}}, ns / kNsPerSecond);
  out->push_back(vm_stopper.Take());

  out->push_back(Family("migwatch_label_values_folded_total",
                        "Distinct label values folded into \"other\" because the label cap was reached.",
                        MetricType::Counter)
                     .Add({{"label", "process"}}, t.folded_processes)
                     .Add({{"label", "requester"}}, t.folded_requesters)
                     .Add({{"label", "vm"}}, t.folded_vms)
                     .Take());
}

void AddQemuFamilies(const QemuState& q, std::vector<MetricFamily>* out) {
  Family active("migwatch_qemu_migration_active",
                "1 while a QEMU live migration's threads exist for this VM and side, 0 after it ended.",
                MetricType::Gauge);
  Family start("migwatch_qemu_migration_start_time_seconds",
               "Unix time the running QEMU live migration's first thread appeared.", MetricType::Gauge);
  for (const auto& side : q.sides) {
    Labels labels{{"vm", side.vm}, {"side", std::string(MigrationSideName(side.side))}};
    active.Add(labels, side.active ? 1 : 0);
    if (side.active) start.Add(labels, side.start_time_seconds);
  }
  Family cpu("migwatch_qemu_migration_thread_cpu_seconds_total",
             "CPU time of QEMU live migration threads, by VM and thread name (channel numbers removed).",
             MetricType::Counter);
  Family moves("migwatch_qemu_migration_thread_migrations_total",
               "CPU migrations of QEMU live migration threads, by VM and thread name.", MetricType::Counter);
  for (const auto& t : q.threads) {
    cpu.Add({{"vm", t.vm}, {"thread", t.thread}}, t.runtime_ns / kNsPerSecond);
    moves.Add({{"vm", t.vm}, {"thread", t.thread}}, t.migrations);
  }
  for (auto* f : {&active, &start, &cpu, &moves}) out->push_back(f->Take());
}

void AddInfoFamilies(const Probes& probes, const BuildInfo& build, std::vector<MetricFamily>* out) {
  Family attached("migwatch_probe_attached",
                  "1 if the probe is attached in this mode, 0 if it could not be attached in any mode.",
                  MetricType::Gauge);
  for (const auto& p : probes.status())
    attached.Add({{"probe", p.name}, {"mode", ProbeModeName(p.mode)}, {"required", p.required ? "true" : "false"}},
                 p.mode == MW_MODE_NONE ? 0 : 1);
  out->push_back(attached.Take());

  out->push_back(Family("migwatch_build_info", "Build and runtime versions; the value is 1.", MetricType::Gauge)
                     .Add({{"version", build.version},
                           {"revision", build.revision},
                           {"libbpf_version", build.libbpf_version},
                           {"kernel", build.kernel}},
                          1)
                     .Take());
  out->push_back(Family("migwatch_online_cpus", "CPUs online now.", MetricType::Gauge)
                     .Add({}, static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN)))
                     .Take());
}

}  // namespace

MetricsCollector::MetricsCollector(Session& session, BuildInfo build) : session_(session), build_(std::move(build)) {}

std::vector<MetricFamily> MetricsCollector::Collect() const {
  std::vector<MetricFamily> out;
  // A throwing Collect() would terminate the exposer's thread, and with it
  // the process: report what could be read instead.
  try {
    auto start = std::chrono::steady_clock::now();
    const Snapshot snapshot = session_.TakeSnapshot();
    AddCounterFamilies(snapshot.counters, &out);
    AddMissFamilies(snapshot.misses, &out);
    AddAttributionFamilies(snapshot.attribution, &out);
    AddQemuFamilies(snapshot.qemu, &out);
    AddInfoFamilies(session_.probes(), build_, &out);
    for (auto& f : CollectSelfProcess()) out.push_back(std::move(f));
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.push_back(Family("migwatch_collect_duration_seconds", "Time the last collection of these metrics took.",
                         MetricType::Gauge)
                      .Add({}, seconds)
                      .Take());
  } catch (const std::exception& e) {
    spdlog::error("collecting metrics failed: {}", e.what());
  }
  return out;
}

std::vector<MetricFamily> CollectSelfProcess() {
  std::vector<MetricFamily> out;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  auto stat = ReadProcessStat(getpid());
  if (stat) {
    out.push_back(Family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                         MetricType::Counter)
                      .Add({}, (stat->utime_ticks + stat->stime_ticks) / ticks)
                      .Take());
    out.push_back(Family("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge)
                      .Add({}, stat->rss_pages * page)
                      .Take());
    // Boot time plus the start time in ticks since boot.
    std::ifstream proc_stat("/proc/stat");
    std::string key;
    double btime = 0;
    while (proc_stat >> key)
      if (key == "btime" && proc_stat >> btime) break;
    out.push_back(Family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                         MetricType::Gauge)
                      .Add({}, btime + stat->starttime_ticks / ticks)
                      .Take());
  }
  std::error_code ec;
  size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    ++fds;
  out.push_back(Family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge).Add({}, fds).Take());
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0)
    out.push_back(Family("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge)
                      .Add({}, static_cast<double>(lim.rlim_cur))
                      .Take());
  return out;
}

}  // namespace migwatch

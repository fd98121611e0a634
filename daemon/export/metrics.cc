#include "migwatch/export/metrics.h"

#include <bpf/libbpf.h>
#include <prometheus/metric_family.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string_view>

#include "migwatch/export/capture.h"
#include "migwatch/export/catalogue.h"
#include "migwatch/model/labels.h"
#include "migwatch/kernel/proc/stat.h"
#include "migwatch/model/session.h"

namespace migwatch {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using LabelValues = std::vector<std::string>;

constexpr double kNsPerSecond = 1e9;

// One family under construction, as its catalogue entry says: series give
// their label values in the order of the entry's label names.
class Family {
 public:
  explicit Family(std::string_view name) : spec_(Spec(name)) {
    family_.name = std::string(spec_.name);
    family_.help = std::string(spec_.help);
    family_.type = spec_.type;
  }
  Family& Add(const std::vector<std::string>& values, double value) {
    if (values.size() != spec_.labels.size())
      throw std::logic_error(family_.name + ": " + std::to_string(values.size()) + " label values for " +
                             std::to_string(spec_.labels.size()) + " labels");
    ClientMetric m;
    for (size_t i = 0; i < values.size(); ++i) m.label.push_back({std::string(spec_.labels[i]), values[i]});
    if (family_.type == MetricType::Counter)
      m.counter.value = value;
    else
      m.gauge.value = value;
    family_.metric.push_back(std::move(m));
    return *this;
  }
  MetricFamily Take() { return std::move(family_); }

 private:
  const MetricSpec& spec_;
  MetricFamily family_;
};

void AddCounterFamilies(const CounterSnapshot& s, std::vector<MetricFamily>* out) {
  Family reasons("migwatch_migrations_total");
  for (int r = 0; r < MW_REASON_COUNT; ++r)
    reasons.Add({std::string(ReasonName(r))}, s.host.migrations[r]);
  out->push_back(reasons.Take());

  Family cpus("migwatch_cpu_migrations_total");
  for (size_t cpu = 0; cpu < s.cpu_moves.size(); ++cpu) {
    if (!CpuShown(s, cpu)) continue;
    cpus.Add({std::to_string(cpu), "in"}, s.cpu_moves[cpu].in);
    cpus.Add({std::to_string(cpu), "out"}, s.cpu_moves[cpu].out);
  }
  out->push_back(cpus.Take());

  Family nodes("migwatch_node_migrations_total");
  for (unsigned from = 0; from < s.nr_nodes; ++from)
    for (unsigned to = 0; to < s.nr_nodes; ++to)
      nodes.Add({std::to_string(from), std::to_string(to)},
                s.node_moves[from * s.nr_nodes + to]);
  out->push_back(nodes.Take());

  Family stopper_cpu("migwatch_stopper_cpu_seconds_total");
  Family stopper_runs("migwatch_stopper_runs_total");
  for (size_t cpu = 0; cpu < s.cpus.size(); ++cpu) {
    if (!CpuShown(s, cpu)) continue;
    stopper_cpu.Add({std::to_string(cpu)}, s.cpus[cpu].stopper_run_ns / kNsPerSecond);
    stopper_runs.Add({std::to_string(cpu)}, s.cpus[cpu].stopper_runs);
  }
  out->push_back(stopper_cpu.Take());
  out->push_back(stopper_runs.Take());
  out->push_back(Family("migwatch_stopper_run_starts_unseen_total").Add({}, s.host.stopper_run_starts_unseen).Take());

  Family work_seconds("migwatch_stopper_work_seconds_total");
  Family work_count("migwatch_stopper_work_runs_total");
  for (int w = MW_WORK_NONE + 1; w < MW_WORK_COUNT; ++w) {
    work_seconds.Add({std::string(WorkName(w))}, s.host.stopper_work_ns[w] / kNsPerSecond);
    work_count.Add({std::string(WorkName(w))}, s.host.stopper_work_runs[w]);
  }
  out->push_back(work_seconds.Take());
  out->push_back(work_count.Take());

  Family drops("migwatch_events_dropped_total");
  for (int d = 0; d < MW_DROP_COUNT; ++d) drops.Add({std::string(DropName(d))}, s.host.drops[d]);
  out->push_back(drops.Take());

  out->push_back(Family("migwatch_same_cpu_migrate_events_total")
                     .Add({}, s.host.same_cpu_events)
                     .Take());
}

void AddMissFamilies(const std::vector<ProgramMisses>& misses, std::vector<MetricFamily>* out) {
  Family family("migwatch_bpf_program_misses_total");
  for (const auto& m : misses) family.Add({m.program}, m.misses);
  out->push_back(family.Take());
}

// One series per name and reason with a count (process, VM).
MetricFamily ByNameAndReason(std::string_view family, const std::map<std::string, ReasonCounts>& counts) {
  Family f(family);
  for (const auto& [name, by_reason] : counts)
    for (int r = 0; r < MW_REASON_COUNT; ++r)
      if (by_reason[r]) f.Add({name, std::string(ReasonName(r))}, by_reason[r]);
  return f.Take();
}

// One series per name, the value times `scale`; zeros left out with
// `skip_zero` (a label whose only growth was elsewhere).
template <typename V>
MetricFamily ByName(std::string_view family, const std::map<std::string, V>& values, double scale, bool skip_zero) {
  Family f(family);
  for (const auto& [name, value] : values)
    if (value || !skip_zero) f.Add({name}, value * scale);
  return f.Take();
}

void AddAttributionFamilies(const AttributionTotals& t, std::vector<MetricFamily>* out) {
  constexpr double kSeconds = 1 / kNsPerSecond;
  out->push_back(ByNameAndReason("migwatch_process_migrations_total", t.process_migrations));
  out->push_back(ByName("migwatch_process_stopper_cpu_seconds_total", t.process_stopper_ns, kSeconds, true));
  out->push_back(
      ByName("migwatch_process_stopper_preempted_seconds_total", t.process_stopper_preempted_ns, kSeconds, true));
  out->push_back(ByName("migwatch_stopper_requester_seconds_total", t.requester_stopper_ns, kSeconds, false));
  out->push_back(ByName("migwatch_stopper_requester_runs_total", t.requester_stopper_runs, 1, false));
  out->push_back(ByName("migwatch_affinity_changes_total", t.affinity_changes, 1, true));
  out->push_back(ByNameAndReason("migwatch_vm_migrations_total", t.vm_migrations));
  out->push_back(ByName("migwatch_vm_stopper_cpu_seconds_total", t.vm_stopper_ns, kSeconds, false));
  out->push_back(ByName("migwatch_vm_stopper_preempted_seconds_total", t.vm_stopper_preempted_ns, kSeconds, false));
  out->push_back(ByName("migwatch_vm_vcpus", t.vm_vcpus, 1, false));
  out->push_back(ByName("migwatch_vm_vcpu_delay_seconds_total", t.vm_vcpu_delay_ns, kSeconds, false));

  out->push_back(Family("migwatch_label_values_folded_total")
                     .Add({"process"}, t.folded_processes)
                     .Add({"requester"}, t.folded_requesters)
                     .Add({"vm"}, t.folded_vms)
                     .Take());
}

void AddQemuFamilies(const QemuState& q, std::vector<MetricFamily>* out) {
  Family active("migwatch_qemu_migration_active");
  Family start("migwatch_qemu_migration_start_time_seconds");
  for (const auto& side : q.sides) {
    LabelValues labels{side.vm, std::string(MigrationSideName(side.side))};
    active.Add(labels, side.active ? 1 : 0);
    if (side.active) start.Add(labels, side.start_time_seconds);
  }
  Family cpu("migwatch_qemu_migration_thread_cpu_seconds_total");
  Family moves("migwatch_qemu_migration_thread_migrations_total");
  for (const auto& t : q.threads) {
    cpu.Add({t.vm, t.thread}, t.runtime_ns / kNsPerSecond);
    moves.Add({t.vm, t.thread}, t.migrations);
  }
  for (auto* f : {&active, &start, &cpu, &moves}) out->push_back(f->Take());
}

void AddInfoFamilies(const Probes& probes, const BuildInfo& build, std::vector<MetricFamily>* out) {
  Family attached("migwatch_probe_attached");
  for (const auto& p : probes.status())
    attached.Add({p.name, ProbeModeName(p.mode), p.required ? "true" : "false"},
                 p.mode == MW_MODE_NONE ? 0 : 1);
  out->push_back(attached.Take());

  out->push_back(Family("migwatch_build_info")
                     .Add({build.version, build.revision, build.libbpf_version, build.kernel},
                          1)
                     .Take());
  out->push_back(Family("migwatch_online_cpus")
                     .Add({}, static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN)))
                     .Take());
}

}  // namespace

MetricsCollector::MetricsCollector(Session& session, BuildInfo build, const CaptureCounts& captures)
    : session_(session), build_(std::move(build)), captures_(captures) {}

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
    out.push_back(Family("migwatch_captures_total").Add({}, captures_.captures.load()).Take());
    out.push_back(
        Family("migwatch_capture_last_timestamp_seconds").Add({}, captures_.last_timestamp_seconds.load()).Take());
    for (auto& f : CollectSelfProcess()) out.push_back(std::move(f));
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.push_back(Family("migwatch_collect_duration_seconds")
                      .Add({}, seconds)
                      .Take());
  } catch (const std::exception& e) {
    spdlog::error("collecting metrics failed: {}", e.what());
  }
  return out;
}

namespace {

// Seconds since the epoch at boot: the btime line of /proc/stat.
double ReadBootTime() {
  std::ifstream proc_stat("/proc/stat");
  std::string key;
  double btime = 0;
  while (proc_stat >> key)
    if (key == "btime" && proc_stat >> btime) break;
  return btime;
}

}  // namespace

std::vector<MetricFamily> CollectSelfProcess() {
  std::vector<MetricFamily> out;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  auto stat = ReadProcessStat(getpid());
  if (stat) {
    out.push_back(Family("process_cpu_seconds_total")
                      .Add({}, (stat->utime_ticks + stat->stime_ticks) / ticks)
                      .Take());
    out.push_back(Family("process_resident_memory_bytes")
                      .Add({}, stat->rss_pages * page)
                      .Take());
    // Boot time plus the start time in ticks since boot. Read once: the
    // kernel sums every possible CPU's counters of every interrupt to
    // write /proc/stat, which on a host with hundreds of possible CPUs cost
    // more than the rest of a scrape.
    static const double btime = ReadBootTime();
    out.push_back(Family("process_start_time_seconds")
                      .Add({}, btime + stat->starttime_ticks / ticks)
                      .Take());
  }
  std::error_code ec;
  size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    ++fds;
  out.push_back(Family("process_open_fds").Add({}, fds).Take());
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0)
    out.push_back(Family("process_max_fds")
                      .Add({}, static_cast<double>(lim.rlim_cur))
                      .Take());
  return out;
}

}  // namespace migwatch

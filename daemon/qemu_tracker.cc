#include "migwatch/qemu_tracker.h"

#include <bpf/bpf.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "migwatch/attribution.h"
#include "migwatch/probes.h"
#include "migwatch/proc/cmdline.h"
#include "migwatch/proc/sched.h"
#include "migwatch/proc/stat.h"
#include "migwatch/snapshot.h"

namespace migwatch {
namespace {

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::optional<uint32_t> ParsePid(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 9) return std::nullopt;
  return static_cast<uint32_t>(std::stoul(s));
}

}  // namespace

QemuTracker::QemuTracker(const Probes& probes, Attributor& attributor) : probes_(probes), attributor_(attributor) {}

void QemuTracker::AddLocked(uint32_t tid, uint32_t tgid, const std::string& comm) {
  QemuThread thread = ClassifyQemuThread(comm);
  if (thread.kind != QemuThreadKind::kMigration) {
    // A migration thread renamed to something else has ended its job.
    if (live_.count(tid)) RetireLocked(tid, 0);
    return;
  }
  if (live_.count(tid)) return;
  ProcessIdentity id = attributor_.Identity(tgid);
  if (id.vm.empty()) return;  // not a QEMU process
  Thread t{tgid, attributor_.VmLabel(id.vm), thread.side, thread.migration_label};
  Key side{t.vm, std::string(MigrationSideName(t.side))};
  bool side_running = false;
  for (const auto& [other_tid, other] : live_)
    side_running |= other.vm == t.vm && other.side == t.side;
  if (!side_running) side_start_[side] = UnixNow();
  sides_seen_[side] = true;
  live_.emplace(tid, std::move(t));
  // Ask the kernel side to report this thread's exit.
  uint8_t one = 1;
  if (bpf_map_update_elem(probes_.watched_tids_fd(), &tid, &one, BPF_ANY))
    spdlog::warn("cannot watch thread {} for its exit: {}", tid, std::strerror(errno));
  spdlog::info("QEMU live migration thread {} ({}) of VM {} appeared", comm, tid, id.vm);
}

void QemuTracker::RetireLocked(uint32_t tid, uint64_t runtime_ns) {
  auto it = live_.find(tid);
  if (it == live_.end()) return;
  const Thread& t = it->second;
  Key key{t.vm, t.label};
  if (!runtime_ns)
    if (auto sched = ReadTaskSched(t.tgid, tid)) runtime_ns = sched->sum_exec_runtime_ns;
  retired_runtime_ns_[key] += runtime_ns;
  ThreadCounts counts;
  if (ReadThread(probes_, tid, &counts)) retired_migrations_[key] += counts.total();
  Key side{t.vm, std::string(MigrationSideName(t.side))};
  live_.erase(it);
  bool side_running = false;
  for (const auto& [other_tid, other] : live_)
    side_running |= other.vm == side.first && MigrationSideName(other.side) == side.second;
  if (!side_running) side_start_.erase(side);
  bpf_map_delete_elem(probes_.watched_tids_fd(), &tid);
}

void QemuTracker::Scan() {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& proc : fs::directory_iterator("/proc", ec)) {
    auto tgid = ParsePid(proc.path().filename());
    if (!tgid) continue;
    auto argv = ReadCmdline(*tgid);
    if (!argv || argv->empty() || !IsQemuBinary((*argv)[0])) continue;
    std::error_code task_ec;
    for (const auto& task : fs::directory_iterator(proc.path() / "task", task_ec)) {
      auto tid = ParsePid(task.path().filename());
      if (!tid) continue;
      if (auto comm = ReadTaskComm(*tgid, *tid)) {
        std::lock_guard lock(mutex_);
        AddLocked(*tid, *tgid, *comm);
      }
    }
  }
}

void QemuTracker::OnTaskEvent(const mw_task_event& event) {
  std::lock_guard lock(mutex_);
  if (event.kind == MW_TASK_RENAME)
    AddLocked(event.pid, event.tgid, std::string(event.comm, strnlen(event.comm, MW_COMM_LEN)));
  else if (event.kind == MW_TASK_EXIT)
    RetireLocked(event.pid, event.runtime_ns);
}

void QemuTracker::Collect(std::vector<prometheus::MetricFamily>* out) {
  std::lock_guard lock(mutex_);
  std::map<Key, uint64_t> runtime_ns = retired_runtime_ns_;
  std::map<Key, uint64_t> migrations = retired_migrations_;
  for (const auto& [tid, t] : live_) {
    Key key{t.vm, t.label};
    if (auto sched = ReadTaskSched(t.tgid, tid)) runtime_ns[key] += sched->sum_exec_runtime_ns;
    ThreadCounts counts;
    if (ReadThread(probes_, tid, &counts)) migrations[key] += counts.total();
    migrations.try_emplace(key, 0);
  }

  auto family = [](const char* name, const char* help, prometheus::MetricType type) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    return f;
  };
  auto sample = [](std::vector<prometheus::ClientMetric::Label> labels, double value, bool counter) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    (counter ? m.counter.value : m.gauge.value) = value;
    return m;
  };
  auto active = family("migwatch_qemu_migration_active",
                       "1 while a QEMU live migration's threads exist for this VM and side, 0 after it ended.",
                       prometheus::MetricType::Gauge);
  auto start = family("migwatch_qemu_migration_start_time_seconds",
                      "Unix time the running QEMU live migration's first thread appeared.",
                      prometheus::MetricType::Gauge);
  for (const auto& [side, seen] : sides_seen_) {
    auto it = side_start_.find(side);
    active.metric.push_back(sample({{"vm", side.first}, {"side", side.second}}, it != side_start_.end(), false));
    if (it != side_start_.end())
      start.metric.push_back(sample({{"vm", side.first}, {"side", side.second}}, it->second, false));
  }
  auto cpu = family("migwatch_qemu_migration_thread_cpu_seconds_total",
                    "CPU time of QEMU live migration threads, by VM and thread name (channel numbers removed).",
                    prometheus::MetricType::Counter);
  for (const auto& [key, ns] : runtime_ns)
    cpu.metric.push_back(sample({{"vm", key.first}, {"thread", key.second}}, ns / 1e9, true));
  auto moves = family("migwatch_qemu_migration_thread_migrations_total",
                      "CPU migrations of QEMU live migration threads, by VM and thread name.",
                      prometheus::MetricType::Counter);
  for (const auto& [key, n] : migrations)
    moves.metric.push_back(sample({{"vm", key.first}, {"thread", key.second}}, n, true));
  for (auto* f : {&active, &start, &cpu, &moves}) out->push_back(std::move(*f));
}

std::vector<LiveMigration> QemuTracker::Live() {
  std::lock_guard lock(mutex_);
  std::vector<LiveMigration> result;
  for (const auto& [side, start] : side_start_) {
    size_t threads = 0;
    MigrationSide s = side.second == MigrationSideName(MigrationSide::kSource) ? MigrationSide::kSource
                                                                                : MigrationSide::kDestination;
    for (const auto& [tid, t] : live_) threads += t.vm == side.first && t.side == s;
    result.push_back({side.first, s, start, threads});
  }
  return result;
}

}  // namespace migwatch

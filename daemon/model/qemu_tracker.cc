#include "migwatch/model/qemu_tracker.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <filesystem>
#include <optional>

#include "migwatch/kernel/proc/cmdline.h"
#include "migwatch/kernel/proc/sched.h"
#include "migwatch/kernel/proc/schedstat.h"
#include "migwatch/kernel/proc/stat.h"

namespace migwatch {
namespace {

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::optional<uint32_t> ParsePid(const std::string& s) {
  uint32_t pid = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), pid);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return pid;
}

}  // namespace

QemuTracker::QemuTracker(VmOf vm_of) : vm_of_(std::move(vm_of)) {}

size_t QemuTracker::ThreadsOf(const SideKey& side) const {
  size_t n = 0;
  for (const auto& [tid, t] : live_) n += t.vm == side.first && t.side == side.second;
  return n;
}

void QemuTracker::Add(uint32_t tid, uint32_t tgid, const std::string& comm) {
  QemuThread thread = ClassifyQemuThread(comm);
  if (thread.kind != QemuThreadKind::kVcpu) {
    if (vcpus_.erase(tid)) watch_changes_.unwatch.push_back(tid);
  } else if (auto it = vcpus_.find(tid); it == vcpus_.end() || it->second.tgid != tgid) {
    const std::string vm = vm_of_(tgid);
    if (!vm.empty()) {
      vcpus_[tid] = Vcpu{tgid, vm};
      watch_changes_.watch.push_back(tid);
    }
  }
  if (thread.kind != QemuThreadKind::kMigration) {
    // A migration thread renamed to something else has ended its job.
    if (live_.count(tid)) Retire(tid, 0, 0);
    return;
  }
  if (live_.count(tid)) return;
  const std::string vm = vm_of_(tgid);
  if (vm.empty()) return;  // not a QEMU process
  SideKey side{vm, thread.side};
  if (!ThreadsOf(side)) side_start_[side] = UnixNow();
  sides_seen_.insert(side);
  live_.emplace(tid, Thread{tgid, vm, thread.side, thread.migration_label});
  watch_changes_.watch.push_back(tid);
  spdlog::info("QEMU live migration thread {} ({}) of VM {} appeared", comm, tid, vm);
}

void QemuTracker::Retire(uint32_t tid, uint64_t runtime_ns, uint64_t nr_migrations) {
  auto it = live_.find(tid);
  if (it == live_.end()) return;
  const Thread t = it->second;
  if (!runtime_ns)
    if (auto sched = ReadTaskSched(t.tgid, tid)) {
      runtime_ns = sched->sum_exec_runtime_ns;
      nr_migrations = sched->nr_migrations;
    }
  auto& totals = retired_[{t.vm, t.label}];
  totals.vm = t.vm;
  totals.thread = t.label;
  totals.runtime_ns += runtime_ns;
  totals.migrations += nr_migrations;
  live_.erase(it);
  const SideKey side{t.vm, t.side};
  if (!ThreadsOf(side)) side_start_.erase(side);
  watch_changes_.unwatch.push_back(tid);
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
      if (auto comm = ReadTaskComm(*tgid, *tid)) Add(*tid, *tgid, *comm);
    }
  }
}

void QemuTracker::OnRename(uint32_t tid, uint32_t tgid, const std::string& comm) { Add(tid, tgid, comm); }

void QemuTracker::OnExit(uint32_t tid, uint64_t runtime_ns, uint64_t nr_migrations, uint64_t run_delay_ns) {
  Retire(tid, runtime_ns, nr_migrations);
  std::optional<Vcpu> vcpu;
  if (auto it = vcpus_.find(tid); it != vcpus_.end()) {
    vcpu = it->second;
    vcpus_.erase(it);
  } else if (auto ended = ended_vcpus_.find(tid); ended != ended_vcpus_.end()) {
    vcpu = ended->second.vcpu;
    ended_vcpus_.erase(ended);
  }
  if (vcpu) exited_vcpus_.push_back(VcpuReading{vcpu->vm, vcpu->tgid, tid, run_delay_ns, /*exited=*/true});
}

QemuState QemuTracker::State() const {
  QemuState state;
  std::map<Key, QemuThreadTotals> threads = retired_;
  for (const auto& [tid, t] : live_) {
    auto& totals = threads[{t.vm, t.label}];
    totals.vm = t.vm;
    totals.thread = t.label;
    if (auto sched = ReadTaskSched(t.tgid, tid)) {
      totals.runtime_ns += sched->sum_exec_runtime_ns;
      totals.migrations += sched->nr_migrations;
    }
  }
  for (auto& [key, totals] : threads) state.threads.push_back(std::move(totals));
  for (const auto& side : sides_seen_) {
    QemuMigrationSide s{side.first, side.second, false, 0, ThreadsOf(side)};
    if (auto it = side_start_.find(side); it != side_start_.end()) {
      s.active = true;
      s.start_time_seconds = it->second;
    }
    state.sides.push_back(std::move(s));
  }
  return state;
}

std::vector<VcpuReading> QemuTracker::ReadVcpus() {
  std::vector<VcpuReading> readings = std::exchange(exited_vcpus_, {});
  readings.reserve(readings.size() + vcpus_.size());
  for (auto it = ended_vcpus_.begin(); it != ended_vcpus_.end();)
    it = ++it->second.readings_waited > kExitWaitReadings ? ended_vcpus_.erase(it) : std::next(it);
  for (auto it = vcpus_.begin(); it != vcpus_.end();) {
    const auto schedstat = ReadTaskSchedStat(static_cast<pid_t>(it->second.tgid), static_cast<pid_t>(it->first));
    if (!schedstat) {
      ended_vcpus_[it->first] = EndedVcpu{it->second};
      it = vcpus_.erase(it);
      continue;
    }
    readings.push_back(VcpuReading{it->second.vm, it->second.tgid, it->first, schedstat->run_queue_wait_ns});
    ++it;
  }
  return readings;
}

WatchChanges QemuTracker::TakeWatchChanges() { return std::exchange(watch_changes_, {}); }

}  // namespace migwatch

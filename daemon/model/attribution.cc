#include "migwatch/model/attribution.h"

#include <unistd.h>

#include <algorithm>

#include "migwatch/kernel/proc/cmdline.h"
#include "migwatch/kernel/proc/kernel_thread.h"
#include "migwatch/kernel/proc/qemu.h"
#include "migwatch/kernel/proc/stat.h"

namespace migwatch {
namespace {

// What grew between two readings. A reading may fall short of an earlier
// one where wakeups are derived from the threads' totals (CountWakeups)
// or a name change carries a lower bound: that is no growth, and the
// higher value stays the base (KeepHigher), so nothing is counted twice.
uint64_t Growth(uint64_t now, uint64_t last) { return now >= last ? now - last : 0; }

void KeepHigher(mw_process_stats* last, const mw_process_stats& now) {
  for (int r = 0; r < MW_REASON_COUNT; ++r) last->migrations[r] = std::max(last->migrations[r], now.migrations[r]);
  last->stopper_moved_ns = std::max(last->stopper_moved_ns, now.stopper_moved_ns);
  last->stopper_preempted_ns = std::max(last->stopper_preempted_ns, now.stopper_preempted_ns);
  last->stopper_requested_ns = std::max(last->stopper_requested_ns, now.stopper_requested_ns);
  last->stopper_requested_runs = std::max(last->stopper_requested_runs, now.stopper_requested_runs);
  last->affinity_changes = std::max(last->affinity_changes, now.affinity_changes);
}

// Whether every counter of `a` is at most that of `b`: a name change whose
// counts are not covered by a reading happened after it.
bool CountsUpTo(const mw_process_stats& a, const mw_process_stats& b) {
  for (int r = 0; r < MW_REASON_COUNT; ++r)
    if (a.migrations[r] > b.migrations[r]) return false;
  return a.stopper_moved_ns <= b.stopper_moved_ns && a.stopper_preempted_ns <= b.stopper_preempted_ns &&
         a.stopper_requested_ns <= b.stopper_requested_ns &&
         a.stopper_requested_runs <= b.stopper_requested_runs && a.affinity_changes <= b.affinity_changes;
}

// /proc/PID/stat's start time is the leader's start_boottime in clock ticks.
uint64_t StartTicks(uint64_t start_ns) {
  static const uint64_t ns_per_tick = 1000000000ull / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  return start_ns / ns_per_tick;
}

bool IsPseudoProcess(const mw_process_key& key) {
  return key.tgid == MW_KERNEL_TGID || key.tgid == MW_OVERFLOW_TGID;
}

}  // namespace

ProcessIdentity IdentityFromComm(const mw_process_key& key, const std::string& comm, uint32_t flags) {
  ProcessIdentity id;
  if (key.tgid == MW_KERNEL_TGID)
    id.name = "kernel";  // work queued from interrupt context
  else if (key.tgid == MW_OVERFLOW_TGID)
    id.name = std::string(LabelFolder::kOther);
  else if (flags & MW_TASK_KTHREAD)
    id.name = KernelThreadLabel(comm);
  else
    id.name = comm.empty() ? "unknown" : comm;
  return id;
}

ProcessIdentity ProcDirectory::ResolvePid(uint32_t tgid, const std::string& comm) {
  mw_process_key key{};
  key.tgid = tgid;
  if (auto stat = ReadProcessStat(static_cast<pid_t>(tgid)))
    key.start_ns = stat->starttime_ticks * (1000000000ull / static_cast<uint64_t>(sysconf(_SC_CLK_TCK)));
  return Resolve(key, comm, 0);
}

ProcessIdentity ProcDirectory::Resolve(const mw_process_key& key, const std::string& comm, uint32_t flags) {
  if (IsPseudoProcess(key)) return IdentityFromComm(key, comm, flags);
  const pid_t tgid = static_cast<pid_t>(key.tgid);
  auto stat = ReadProcessStat(tgid);
  if (!stat || stat->starttime_ticks != StartTicks(key.start_ns)) return IdentityFromComm(key, comm, flags);
  ProcessIdentity id = IdentityFromComm(key, stat->comm, stat->IsKernelThread() ? MW_TASK_KTHREAD : 0);
  if (stat->IsKernelThread()) return id;
  if (auto argv = ReadCmdline(tgid); argv && !argv->empty() && IsQemuBinary((*argv)[0])) {
    if (auto vm = ParseQemuCommandLine(*argv)) {
      // Without -name or -uuid only the pid tells two VMs apart.
      id.vm = vm->name.empty() ? "pid-" + std::to_string(key.tgid) : vm->name;
      id.incoming = vm->incoming;
    }
  }
  return id;
}

Attribution::Attribution(ProcessDirectory& directory, size_t label_cap, size_t vm_label_cap)
    : directory_(directory), process_labels_(label_cap), requester_labels_(label_cap), vm_labels_(vm_label_cap) {}

void Attribution::AddNameChange(NameChange change) {
  const mw_process_key key = change.key;
  pending_[key].push_back(std::move(change));
}

void Attribution::Charge(const ProcessIdentity& id, const mw_process_stats& from, const mw_process_stats& to,
                         LabelFolder::Clock::time_point now) {
  ReasonCounts grew{};
  uint64_t moved = 0;
  for (int r = 0; r < MW_REASON_COUNT; ++r) {
    grew[r] = Growth(to.migrations[r], from.migrations[r]);
    moved += grew[r];
  }
  const uint64_t moved_ns = Growth(to.stopper_moved_ns, from.stopper_moved_ns);
  const uint64_t preempted_ns = Growth(to.stopper_preempted_ns, from.stopper_preempted_ns);
  if (moved || moved_ns || preempted_ns) {
    // The stopper time a process lost ranks it as much as the time spent
    // moving it: a VM whose vCPUs only suffer another's storm keeps a label.
    process_labels_.Observe(id.name, {.migrations = moved, .stopper_ns = moved_ns + preempted_ns});
    const std::string label = process_labels_.Label(id.name, now);
    auto& p = totals_.process_migrations[label];
    for (int r = 0; r < MW_REASON_COUNT; ++r) p[r] += grew[r];
    totals_.process_stopper_ns[label] += moved_ns;
    totals_.process_stopper_preempted_ns[label] += preempted_ns;
    if (!id.vm.empty()) {
      const std::string vm = vm_labels_.Label(id.vm, now);
      auto& v = totals_.vm_migrations[vm];
      for (int r = 0; r < MW_REASON_COUNT; ++r) v[r] += grew[r];
      totals_.vm_stopper_ns[vm] += moved_ns;
      totals_.vm_stopper_preempted_ns[vm] += preempted_ns;
    }
  }
  const uint64_t requested_ns = Growth(to.stopper_requested_ns, from.stopper_requested_ns);
  const uint64_t requested_runs = Growth(to.stopper_requested_runs, from.stopper_requested_runs);
  const uint64_t changes = Growth(to.affinity_changes, from.affinity_changes);
  if (requested_ns || requested_runs || changes) {
    // An affinity change forced a task off its CPU: a migration it asked for.
    requester_labels_.Observe(id.name, {.migrations = changes, .stopper_ns = requested_ns});
    const std::string label = requester_labels_.Label(id.name, now);
    totals_.requester_stopper_ns[label] += requested_ns;
    totals_.requester_stopper_runs[label] += requested_runs;
    totals_.affinity_changes[label] += changes;
  }
}

void Attribution::Fold(const std::vector<ProcessEntry>& entries, const std::set<mw_process_key>& gone,
                       LabelFolder::Clock::time_point now) {
  std::set<mw_process_key> present;
  for (const auto& e : entries) {
    present.insert(e.key);
    auto pending = pending_.find(e.key);
    auto [it, fresh] = tracked_.try_emplace(e.key);
    Tracked& t = it->second;
    if (fresh) {
      t.flags = e.stats.flags;
      // A name change still to apply means the entry was created under the
      // old name, which the entry itself keeps; /proc already shows the new.
      const bool renamed_since = pending != pending_.end() && !pending->second.empty() &&
                                 CountsUpTo(pending->second.front().counts, e.stats);
      t.identity = renamed_since ? IdentityFromComm(e.key, CommOf(e.stats.comm), t.flags)
                                 : directory_.Resolve(e.key, CommOf(e.stats.comm), t.flags);
      newest_by_tgid_[e.key.tgid] = e.key;
    }
    while (pending != pending_.end() && !pending->second.empty() &&
           CountsUpTo(pending->second.front().counts, e.stats)) {
      const NameChange& change = pending->second.front();
      Charge(t.identity, t.last, change.counts, now);
      KeepHigher(&t.last, change.counts);
      if (change.exec) {
        t.identity = directory_.Resolve(e.key, change.comm, change.flags);
      } else {
        t.identity.name = IdentityFromComm(e.key, change.comm, t.flags).name;
      }
      pending->second.pop_front();
    }
    Charge(t.identity, t.last, e.stats, now);
    KeepHigher(&t.last, e.stats);
  }
  // Forget the processes that are gone, and every change of a process
  // without an entry (it made no count to split).
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    if (!present.count(it->first) || gone.count(it->first)) {
      if (auto by_tgid = newest_by_tgid_.find(it->first.tgid);
          by_tgid != newest_by_tgid_.end() && by_tgid->second == it->first)
        newest_by_tgid_.erase(by_tgid);
      it = tracked_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.empty() || !present.count(it->first) || gone.count(it->first))
      it = pending_.erase(it);
    else
      ++it;
  }
  totals_.folded_processes = process_labels_.folded_values();
  totals_.folded_requesters = requester_labels_.folded_values();
  totals_.folded_vms = vm_labels_.folded_values();
}

void Attribution::Relabel(LabelFolder::Clock::time_point now) {
  process_labels_.ReassignSlots(now);
  requester_labels_.ReassignSlots(now);
  // VM names are not ranked (nothing is observed): this only counts the
  // export for the VMs that lost their label for being idle.
  vm_labels_.ReassignSlots(now);
  // The totals were just exported with the final value of each series that
  // ends here, so none of its counts is lost; the folders keep these values
  // under "other" until the next export has shown their series ended.
  for (const auto& name : process_labels_.TakeEvicted()) {
    totals_.process_migrations.erase(name);
    totals_.process_stopper_ns.erase(name);
    totals_.process_stopper_preempted_ns.erase(name);
  }
  for (const auto& name : requester_labels_.TakeEvicted()) {
    totals_.requester_stopper_ns.erase(name);
    totals_.requester_stopper_runs.erase(name);
    totals_.affinity_changes.erase(name);
  }
  for (const auto& name : vm_labels_.TakeEvicted()) {
    totals_.vm_migrations.erase(name);
    totals_.vm_stopper_ns.erase(name);
    totals_.vm_stopper_preempted_ns.erase(name);
    totals_.vm_vcpus.erase(name);
    totals_.vm_vcpu_delay_ns.erase(name);
  }
}

void Attribution::FoldVcpus(const std::vector<VcpuReading>& readings, LabelFolder::Clock::time_point now) {
  for (auto& [vm, vcpus] : totals_.vm_vcpus) vcpus = 0;
  std::map<std::pair<uint32_t, uint32_t>, VcpuDelayRead> delay_read;
  std::set<std::pair<uint32_t, uint32_t>> exited;
  for (const auto& reading : readings) {
    const std::string vm = vm_labels_.Label(reading.vm, now);
    if (!reading.exited) ++totals_.vm_vcpus[vm];
    const auto thread = std::make_pair(reading.tgid, reading.tid);
    const auto last = vcpu_delay_read_.find(thread);
    // A thread's run delay never falls: a lower reading is another thread
    // that took the tid, counted from its start.
    const uint64_t before =
        last != vcpu_delay_read_.end() && last->second.delay_ns <= reading.run_delay_ns ? last->second.delay_ns : 0;
    totals_.vm_vcpu_delay_ns[vm] += reading.run_delay_ns - before;
    if (reading.exited)
      exited.insert(thread);
    else
      delay_read[thread] = VcpuDelayRead{reading.run_delay_ns, 0};
  }
  // A thread gone from the readings may still have its exit record to come.
  for (const auto& [thread, read] : vcpu_delay_read_)
    if (!delay_read.count(thread) && !exited.count(thread) && read.readings_missed < QemuTracker::kExitWaitReadings + 1)
      delay_read[thread] = VcpuDelayRead{read.delay_ns, read.readings_missed + 1};
  vcpu_delay_read_ = std::move(delay_read);
  totals_.folded_vms = vm_labels_.folded_values();
}

std::string Attribution::VmLabel(const std::string& vm) { return vm_labels_.Label(vm); }

ProcessIdentity Attribution::IdentityOf(uint32_t tgid, const std::string& comm) {
  if (auto it = newest_by_tgid_.find(tgid); it != newest_by_tgid_.end())
    if (auto t = tracked_.find(it->second); t != tracked_.end()) return t->second.identity;
  return directory_.ResolvePid(tgid, comm);
}

}  // namespace migwatch

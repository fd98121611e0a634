#include "migwatch/attribution.h"

#include <sys/stat.h>

#include "migwatch/probes.h"
#include "migwatch/proc/cmdline.h"
#include "migwatch/proc/kernel_thread.h"
#include "migwatch/proc/qemu.h"
#include "migwatch/proc/stat.h"

namespace migwatch {
namespace {

bool ProcessExists(uint32_t tgid) {
  struct stat st;
  return stat(("/proc/" + std::to_string(tgid)).c_str(), &st) == 0;
}

// What grew since `last`. A field that went down means the kernel entry was
// removed and created again: all of its value is new.
uint64_t Growth(uint64_t now, uint64_t last) { return now >= last ? now - last : now; }

}  // namespace

ProcessIdentity ResolveProcess(pid_t tgid, const std::string& fallback_comm, uint32_t flags) {
  ProcessIdentity id;
  std::string comm = fallback_comm;
  bool kthread = flags & MW_TASK_KTHREAD;
  if (auto stat = ReadProcessStat(tgid)) {
    comm = stat->comm;
    kthread = stat->IsKernelThread();
  }
  if (kthread) {
    id.name = KernelThreadLabel(comm);
    return id;
  }
  id.name = comm.empty() ? "unknown" : comm;
  if (auto argv = ReadCmdline(tgid); argv && !argv->empty() && IsQemuBinary((*argv)[0])) {
    if (auto vm = ParseQemuCommandLine(*argv)) {
      id.vm = vm->name.empty() ? "unnamed" : vm->name;
      id.incoming = vm->incoming;
    }
  }
  return id;
}

Attributor::Attributor(const Probes& probes, size_t label_cap, size_t vm_label_cap)
    : probes_(probes), process_labels_(label_cap), requester_labels_(label_cap), vm_labels_(vm_label_cap) {}

void Attributor::DropEvictedLocked() {
  // An evicted value's series ends; if the value comes back it starts anew.
  for (const auto& name : process_labels_.TakeEvicted()) {
    totals_.process_migrations.erase(name);
    totals_.process_stopper_ns.erase(name);
  }
  for (const auto& name : requester_labels_.TakeEvicted()) {
    totals_.requester_stopper_ns.erase(name);
    totals_.requester_stopper_runs.erase(name);
    totals_.affinity_changes.erase(name);
  }
  for (const auto& name : vm_labels_.TakeEvicted()) {
    totals_.vm_migrations.erase(name);
    totals_.vm_stopper_ns.erase(name);
  }
}

const ProcessIdentity& Attributor::IdentityLocked(uint32_t tgid, const std::string& fallback_comm, uint32_t flags) {
  auto it = tracked_.find(tgid);
  if (it != tracked_.end()) return it->second.identity;
  Tracked t;
  if (tgid == MW_KERNEL_TGID)
    t.identity.name = "kernel";  // work queued from interrupt context
  else if (tgid == MW_OVERFLOW_TGID)
    t.identity.name = std::string(LabelFolder::kOther);
  else
    t.identity = ResolveProcess(tgid, fallback_comm, flags);
  return tracked_.emplace(tgid, std::move(t)).first->second.identity;
}

ProcessIdentity Attributor::Identity(uint32_t tgid, const std::string& fallback_comm, uint32_t flags) {
  std::lock_guard lock(mutex_);
  return IdentityLocked(tgid, fallback_comm, flags);
}

void Attributor::Update() {
  std::lock_guard lock(mutex_);
  // Liveness first, then the counts: a process found dead has made all its
  // migrations before its entry is read, so removing the entry loses none.
  std::unordered_map<uint32_t, bool> alive;
  for (uint32_t tgid : ListProcesses(probes_))
    alive[tgid] = tgid == MW_KERNEL_TGID || tgid == MW_OVERFLOW_TGID || ProcessExists(tgid);
  const auto processes = ReadProcesses(probes_);

  for (const auto& [tgid, now] : processes) {
    const ProcessIdentity& id = IdentityLocked(tgid, now.comm, now.flags);
    Tracked& t = tracked_[tgid];
    const ProcessCounts& last = t.last;

    ReasonCounts grew{};
    bool moved = false;
    for (int r = 0; r < MW_REASON_COUNT; ++r) {
      grew[r] = Growth(now.migrations[r], last.migrations[r]);
      moved |= grew[r] != 0;
    }
    const auto now_time = LabelFolder::Clock::now();
    uint64_t moved_ns = Growth(now.stopper_moved_ns, last.stopper_moved_ns);
    if (moved || moved_ns) {
      const std::string label = process_labels_.Label(id.name, now_time);
      auto& p = totals_.process_migrations[label];
      for (int r = 0; r < MW_REASON_COUNT; ++r) p[r] += grew[r];
      totals_.process_stopper_ns[label] += moved_ns;
    }
    uint64_t requested_ns = Growth(now.stopper_requested_ns, last.stopper_requested_ns);
    uint64_t requested_runs = Growth(now.stopper_requested_runs, last.stopper_requested_runs);
    uint64_t changes = Growth(now.affinity_changes, last.affinity_changes);
    if (requested_ns || requested_runs || changes) {
      const std::string label = requester_labels_.Label(id.name, now_time);
      totals_.requester_stopper_ns[label] += requested_ns;
      totals_.requester_stopper_runs[label] += requested_runs;
      totals_.affinity_changes[label] += changes;
    }
    if (!id.vm.empty() && (moved || moved_ns)) {
      const std::string label = vm_labels_.Label(id.vm, now_time);
      auto& v = totals_.vm_migrations[label];
      for (int r = 0; r < MW_REASON_COUNT; ++r) v[r] += grew[r];
      totals_.vm_stopper_ns[label] += moved_ns;
    }
    t.last = now;
    if (auto a = alive.find(tgid); a != alive.end() && !a->second) {
      ForgetProcess(probes_, tgid);
      tracked_.erase(tgid);
    }
  }
  // Entries gone from the map (removed above on an earlier pass, or never
  // re-created) need no state either.
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    if (!processes.count(it->first) && it->first != MW_KERNEL_TGID && it->first != MW_OVERFLOW_TGID)
      it = tracked_.erase(it);
    else
      ++it;
  }
  DropEvictedLocked();
  totals_.folded_processes = process_labels_.folded_values();
  totals_.folded_requesters = requester_labels_.folded_values();
  totals_.folded_vms = vm_labels_.folded_values();
}

void Attributor::OnExec(uint32_t tgid, const std::string& comm) {
  std::lock_guard lock(mutex_);
  if (auto it = tracked_.find(tgid); it != tracked_.end()) it->second.identity = ResolveProcess(tgid, comm, 0);
}

void Attributor::OnRename(uint32_t tgid, const std::string& comm) {
  std::lock_guard lock(mutex_);
  auto it = tracked_.find(tgid);
  if (it == tracked_.end() || comm.empty()) return;
  ProcessIdentity& id = it->second.identity;
  bool kthread = false;
  if (auto stat = ReadProcessStat(tgid)) kthread = stat->IsKernelThread();
  id.name = kthread ? KernelThreadLabel(comm) : comm;
}

std::string Attributor::VmLabel(const std::string& vm) {
  std::lock_guard lock(mutex_);
  std::string label = vm_labels_.Label(vm);
  DropEvictedLocked();
  return label;
}

AttributionTotals Attributor::Totals() const {
  std::lock_guard lock(mutex_);
  return totals_;
}

}  // namespace migwatch

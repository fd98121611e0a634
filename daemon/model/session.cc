#include "migwatch/model/session.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <map>

namespace migwatch {

std::unique_ptr<Session> Session::Open(const SessionOptions& options, std::string* error) {
  std::unique_ptr<Session> s(new Session());
  s->probes_ = Probes::Load(options.probes, error);
  if (!s->probes_) return nullptr;
  for (const auto& p : s->probes_->status()) {
    if (p.mode != MW_MODE_NONE)
      spdlog::info("probe {} attached as {}", p.name, ProbeModeName(p.mode));
    else
      spdlog::info("probe {} not attached: {}", p.name, p.why_not);
  }
  s->attribution_ = std::make_unique<Attribution>(s->directory_, options.label_cap, options.vm_label_cap);
  Attribution* attribution = s->attribution_.get();
  s->qemu_ = std::make_unique<QemuTracker>([attribution](uint32_t tgid) {
    const ProcessIdentity id = attribution->IdentityOf(tgid, "");
    return id.vm.empty() ? std::string() : attribution->VmLabel(id.vm);
  });
  s->task_events_ = ring_buffer__new(s->probes_->task_events_fd(), DeliverTaskEvent, s.get(), nullptr);
  if (!s->task_events_) {
    *error = std::string("cannot open the task ring buffer: ") + std::strerror(errno);
    return nullptr;
  }
  std::lock_guard lock(s->mutex_);
  // Threads count their migrations from their start; what they made before
  // migwatch attached is not for it to charge.
  if (s->probes_->has_task_iterator()) {
    std::vector<ProcessEntry> entries;
    ReadProcessEntries(*s->probes_, &entries);
    for (const auto& e : entries) s->baseline_[e.key].others = OtherMigrations(e.stats);
    std::vector<mw_thread_record> threads;
    s->probes_->ReadThreadRecords(&threads);
    for (const auto& t : threads) s->baseline_[t.process].total += t.nr_migrations;
  }
  s->qemu_->Scan();
  s->ApplyWatchChangesLocked();
  return s;
}

Session::~Session() {
  if (task_events_) ring_buffer__free(task_events_);
}

int Session::DeliverTaskEvent(void* ctx, void* data, size_t size) {
  if (size >= sizeof(mw_task_event)) static_cast<Session*>(ctx)->OnTaskEvent(*static_cast<const mw_task_event*>(data));
  return 0;
}

void Session::OnTaskEvent(const mw_task_event& event) {
  const std::string comm(event.comm, strnlen(event.comm, MW_COMM_LEN));
  if (event.has_counts) {
    NameChange change;
    change.key.tgid = event.tgid;
    change.key.start_ns = event.start_ns;
    change.comm = comm;
    change.exec = event.kind == MW_TASK_EXEC;
    change.flags = event.counts.flags;
    change.counts = event.counts;
    attribution_->AddNameChange(std::move(change));
  }
  if (event.kind == MW_TASK_RENAME)
    qemu_->OnRename(event.pid, event.tgid, comm);
  else if (event.kind == MW_TASK_EXIT)
    qemu_->OnExit(event.pid, event.runtime_ns, event.nr_migrations);
}

void Session::ApplyWatchChangesLocked() {
  const WatchChanges changes = qemu_->TakeWatchChanges();
  const uint8_t one = 1;
  for (uint32_t tid : changes.watch)
    if (bpf_map_update_elem(probes_->watched_tids_fd(), &tid, &one, BPF_ANY))
      spdlog::warn("cannot watch thread {} for its exit: {}", tid, std::strerror(errno));
  for (uint32_t tid : changes.unwatch) bpf_map_delete_elem(probes_->watched_tids_fd(), &tid);
}

bool Session::ConsumeEventsLocked() {
  const int n = ring_buffer__consume(task_events_);
  ApplyWatchChangesLocked();
  if (n < 0 && n != -EINTR) {
    spdlog::error("reading the task ring buffer failed: {}", std::strerror(-n));
    return false;
  }
  return true;
}

bool Session::ConsumeEvents() {
  std::lock_guard lock(mutex_);
  return ConsumeEventsLocked();
}

void Session::ReadProcessesLocked(std::vector<ProcessEntry>* out, std::set<mw_process_key>* gone,
                                  CounterSnapshot* counters) {
  // Which processes have ended first: their last thread had exited before
  // the values read next, which are final. This first read also gives the
  // exited threads' totals, which must come before the live threads'
  // (CountWakeups).
  std::vector<ProcessEntry> first;
  std::vector<ProcessEntry>& entries = *out;
  std::map<mw_process_key, uint64_t> exited;
  if (ReadProcessEntries(*probes_, &first)) {
    for (const auto& e : first) {
      exited[e.key] = e.stats.exited_migrations;
      if (gone && (e.stats.flags & MW_PROCESS_EXITED)) gone->insert(e.key);
    }
  }
  std::map<mw_process_key, uint64_t> live;
  const bool iterated = probes_->has_task_iterator();
  if (iterated) {
    std::vector<mw_thread_record> threads;
    if (!probes_->ReadThreadRecords(&threads)) spdlog::warn("the task iterator could not be read in full");
    for (const auto& t : threads) live[t.process] += t.nr_migrations;
  }
  if (counters && !ReadCounters(*probes_, counters)) spdlog::warn("some BPF counters could not be read");
  if (!ReadProcessEntries(*probes_, &entries)) spdlog::warn("the process map could not be read in full");
  if (iterated) {
    // A process whose threads only ever moved at wakeups has no entry.
    for (const auto& e : entries) live.try_emplace(e.key, 0);
    std::map<mw_process_key, size_t> index;
    for (size_t i = 0; i < entries.size(); ++i) index[entries[i].key] = i;
    for (const auto& [key, migrations] : live) {
      auto it = index.find(key);
      if (it == index.end()) {
        ProcessEntry e;
        e.key = key;
        entries.push_back(e);
        it = index.emplace(key, entries.size() - 1).first;
      }
      ProcessEntry& e = entries[it->second];
      e.live_migrations = migrations;
      auto x = exited.find(key);
      auto b = baseline_.find(key);
      CountWakeups(&e, x == exited.end() ? 0 : x->second, b == baseline_.end() ? ProcessBaseline{} : b->second);
    }
  }
}

void Session::FoldProcessesLocked(CounterSnapshot* counters) {
  std::vector<ProcessEntry> entries;
  std::set<mw_process_key> gone;
  ReadProcessesLocked(&entries, &gone, counters);
  // Name changes written before the read are in the ring buffer now.
  ConsumeEventsLocked();
  attribution_->Fold(entries, gone);
  for (const auto& key : gone) {
    DeleteProcessEntry(*probes_, key);
    baseline_.erase(key);
  }
}

Snapshot Session::TakeSnapshot() {
  std::lock_guard lock(mutex_);
  Snapshot s;
  FoldProcessesLocked(&s.counters);
  s.attribution = attribution_->totals();
  s.qemu = qemu_->State();
  s.misses = probes_->Misses();
  return s;
}

void Session::Sweep() {
  std::lock_guard lock(mutex_);
  FoldProcessesLocked(nullptr);
}

std::vector<ProcessEntry> Session::ReadProcesses() {
  std::lock_guard lock(mutex_);
  std::vector<ProcessEntry> entries;
  ReadProcessesLocked(&entries, nullptr, nullptr);
  return entries;
}

std::optional<ProcessEntry> Session::ReadProcess(uint32_t tgid) {
  std::optional<ProcessEntry> newest;
  for (auto& e : ReadProcesses())
    if (e.key.tgid == tgid && (!newest || e.key.start_ns > newest->key.start_ns)) newest = e;
  return newest;
}

ProcessIdentity Session::IdentityOf(uint32_t tgid, const std::string& comm) {
  std::lock_guard lock(mutex_);
  return attribution_->IdentityOf(tgid, comm);
}

void Session::SetTracing(bool on) {
  std::lock_guard lock(mutex_);
  probes_->SetTracing(on);
}

}  // namespace migwatch

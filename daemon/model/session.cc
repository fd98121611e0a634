#include "migwatch/model/session.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <map>

namespace migwatch {
namespace {

// Readings of the process map between two identical readings of the pending
// moves before giving up on an exact one (ReadProcessesLocked).
constexpr int kPendingMoveAttempts = 10;
// Readings for the baseline of a process whose threads keep moving.
constexpr int kBaselineAttempts = 5;

// Per process: the se.nr_migrations of its live threads.
std::map<mw_process_key, uint64_t> ReadLiveMigrations(const Probes& probes) {
  std::map<mw_process_key, uint64_t> live;
  std::vector<mw_thread_record> threads;
  if (!probes.ReadThreadRecords(&threads)) spdlog::warn("the task iterator could not be read in full");
  for (const auto& t : threads) live[t.process] += t.nr_migrations;
  return live;
}

}  // namespace

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
  Session* session = s.get();
  s->task_events_ =
      TaskEventReader::Open(*s->probes_, [session](const mw_task_event& e) { session->OnTaskEvent(e); }, error);
  if (!s->task_events_) return nullptr;
  std::lock_guard lock(s->mutex_);
  if (s->probes_->has_task_iterator()) s->TakeBaselineLocked();
  s->qemu_->Scan();
  s->ApplyWatchChangesLocked();
  return s;
}

Session::~Session() = default;

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
    qemu_->OnExit(event.pid, event.runtime_ns, event.nr_migrations, event.run_delay_ns);
}

void Session::ApplyWatchChangesLocked() {
  const WatchChanges changes = qemu_->TakeWatchChanges();
  for (const auto& [tid, why] : UpdateWatchedThreads(*probes_, changes.watch, changes.unwatch))
    spdlog::warn("cannot watch thread {} for its exit: {}", tid, why);
}

bool Session::DeliverEventsLocked() {
  const int n = task_events_->Consume();
  if (n < 0 && n != -EINTR) {
    spdlog::error("reading the task ring buffer failed: {}", std::strerror(-n));
    return false;
  }
  return true;
}

bool Session::ConsumeEvents() {
  std::lock_guard lock(mutex_);
  const bool ok = DeliverEventsLocked();
  ApplyWatchChangesLocked();
  return ok;
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
  const bool iterated = probes_->has_task_iterator();
  std::map<mw_process_key, uint64_t> live;
  if (iterated) live = ReadLiveMigrations(*probes_);
  if (counters && !ReadCounters(*probes_, counters)) spdlog::warn("some BPF counters could not be read");
  // What is not yet in the entries (deferred moves, held charges) after the
  // live threads, and as of the reading of the reasons: read on both sides
  // of it, and again while a stopper run deferred or settled a move or
  // flushed its charges in between (a seqlock's reading; a run settles its
  // move microseconds after making it). The reading after the map is added
  // to it (AddUnsettled): a move made, but still pending when read, is in
  // the kernel's count and so in the process's.
  PendingMoves pending, pending_after;
  for (int attempt = 0;; ++attempt) {
    if (iterated && !ReadPendingMoves(*probes_, &pending)) spdlog::warn("the stopper map could not be read");
    if (!ReadProcessEntries(*probes_, &entries)) spdlog::warn("the process map could not be read in full");
    const bool read_after = ReadPendingMoves(*probes_, &pending_after);
    if (!read_after) spdlog::warn("the stopper map could not be read");
    if (!iterated || (read_after && pending_after.changes == pending.changes)) break;
    if (attempt == kPendingMoveAttempts) {
      // Still moving: the wakeups derived below may fall short, until
      // the next reading.
      spdlog::debug("pending moves kept changing while the process map was read");
      break;
    }
  }
  AddUnsettled(pending_after, &pending, &entries);
  // An entry stays until what is unsettled has reached it.
  if (gone)
    for (const auto& [key, counts] : pending_after.unsettled) gone->erase(key);
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
      auto p = pending.others.find(key);
      e.pending_others = p == pending.others.end() ? 0 : p->second;
      auto x = exited.find(key);
      auto b = baseline_.find(key);
      CountWakeups(&e, x == exited.end() ? 0 : x->second, b == baseline_.end() ? ProcessBaseline{} : b->second);
    }
  }
}

void Session::TakeBaselineLocked() {
  // Threads count their migrations from their start; what they made before
  // migwatch attached is not for it to charge. Both halves of a process's
  // baseline (abi.h: the kernel's total, the programs' other reasons) must
  // have a move in both or in neither, or the wakeups derived from them
  // stay off by it for the session's life: what was still unsettled
  // counts (a CPU can hold a process's charges for as long as no other
  // process's take their place), and a process whose threads moved during
  // the reading is read again.
  std::map<mw_process_key, ProcessBaseline> taken;
  for (int attempt = 0; attempt < kBaselineAttempts; ++attempt) {
    std::vector<ProcessEntry> entries;
    ReadProcessesLocked(&entries, nullptr, nullptr);
    const std::map<mw_process_key, uint64_t> live_after = ReadLiveMigrations(*probes_);
    const bool last = attempt + 1 == kBaselineAttempts;
    bool all_taken = true;
    for (const auto& e : entries) {
      if (taken.count(e.key)) continue;
      const auto it = live_after.find(e.key);
      const uint64_t after = it == live_after.end() ? 0 : it->second;
      if ((after == e.live_migrations && e.pending_others == 0) || last)
        taken[e.key] = BaselineOf(e, after);
      else
        all_taken = false;
    }
    if (all_taken) break;
  }
  baseline_ = std::move(taken);
}

void Session::FoldProcessesLocked(CounterSnapshot* counters, bool remove_gone) {
  std::vector<ProcessEntry> entries;
  std::set<mw_process_key> gone;
  ReadProcessesLocked(&entries, remove_gone ? &gone : nullptr, counters);
  // Name changes written before the read are in the ring buffer now.
  DeliverEventsLocked();
  attribution_->Fold(entries, gone);
  if (!remove_gone) return;
  DeleteProcessEntries(*probes_, gone);
  for (const auto& key : gone) baseline_.erase(key);
  ApplyWatchChangesLocked();
}

Snapshot Session::TakeSnapshot() {
  std::lock_guard lock(mutex_);
  Snapshot s;
  FoldProcessesLocked(&s.counters, /*remove_gone=*/false);
  attribution_->FoldVcpus(qemu_->ReadVcpus());
  s.attribution = attribution_->totals();
  attribution_->Relabel();
  s.qemu = qemu_->State();
  s.misses = probes_->Misses();
  return s;
}

void Session::Sweep() {
  std::lock_guard lock(mutex_);
  FoldProcessesLocked(nullptr, /*remove_gone=*/true);
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

void Session::SetTracing(uint32_t records) {
  std::lock_guard lock(mutex_);
  probes_->SetTracing(records);
}

}  // namespace migwatch

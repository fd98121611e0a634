#include "migwatch/kernel/maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <tuple>

#include "migwatch/kernel/kernel_info.h"
#include "migwatch/kernel/probes.h"

bool operator<(const mw_process_key& a, const mw_process_key& b) {
  return std::tie(a.tgid, a.start_ns) < std::tie(b.tgid, b.start_ns);
}

bool operator==(const mw_process_key& a, const mw_process_key& b) {
  return a.tgid == b.tgid && a.start_ns == b.start_ns;
}

namespace migwatch {
namespace {

// A per-CPU value comes as one copy per possible CPU, each padded to 8 bytes.
template <typename T>
constexpr bool kPadded = sizeof(T) % 8 == 0;

// Reads keys 0..count-1 of an array in one batch: `values` gets count * cpus
// copies, key-major, `cpus` being the possible CPUs for a per-CPU array and
// 1 for a plain one.
template <typename T>
bool LookupArray(int fd, uint32_t count, unsigned cpus, std::vector<T>* values) {
  static_assert(kPadded<T>, "array values must be 8-byte multiples to be read in batches");
  values->assign(static_cast<size_t>(count) * cpus, T{});
  std::vector<uint32_t> keys(count);
  uint32_t out_batch = 0, done = 0;
  while (done < count) {
    uint32_t n = count - done;
    uint32_t in_batch = done;
    int err = bpf_map_lookup_batch(fd, done ? &in_batch : nullptr, &out_batch, keys.data() + done,
                                   values->data() + static_cast<size_t>(done) * cpus, &n, nullptr);
    done += n;
    if (err) return errno == ENOENT && done == count;
    if (n == 0) return false;
  }
  return true;
}

}  // namespace

uint64_t TotalMigrations(const mw_process_stats& stats) {
  return std::accumulate(std::begin(stats.migrations), std::end(stats.migrations), uint64_t{0});
}

std::string CommOf(const char (&comm)[MW_COMM_LEN]) { return std::string(comm, strnlen(comm, MW_COMM_LEN)); }

uint64_t OtherMigrations(const mw_process_stats& stats) {
  uint64_t others = 0;
  for (int r = 0; r < MW_REASON_COUNT; ++r)
    if (r != MW_REASON_WAKEUP) others += stats.migrations[r];
  return others;
}

void CountWakeups(ProcessEntry* entry, uint64_t exited_migrations, const ProcessBaseline& baseline) {
  const uint64_t all = entry->live_migrations + exited_migrations;
  entry->kernel_migrations = all;
  const uint64_t counted = OtherMigrations(entry->stats) + entry->pending_others;
  const uint64_t total = all > baseline.total ? all - baseline.total : 0;
  const uint64_t others = counted > baseline.others ? counted - baseline.others : 0;
  entry->stats.migrations[MW_REASON_WAKEUP] = total > others ? total - others : 0;
}

ProcessBaseline BaselineOf(const ProcessEntry& entry, uint64_t live_after) {
  ProcessBaseline b;
  b.total = entry.kernel_migrations + (live_after > entry.live_migrations ? live_after - entry.live_migrations : 0);
  // A move that left `unsettled` during the reading (pending_others) may
  // be in the entry or not: left out, the wakeups fall short.
  b.others = OtherMigrations(entry.stats);
  return b;
}

bool CpuShown(const CounterSnapshot& s, size_t cpu) {
  if (cpu < s.online.size() && s.online[cpu]) return true;
  const bool moved = cpu < s.cpu_moves.size() && (s.cpu_moves[cpu].in || s.cpu_moves[cpu].out);
  const bool stopped = cpu < s.cpus.size() && s.cpus[cpu].stopper_runs;
  return moved || stopped;
}

bool ReadCounters(const Probes& probes, CounterSnapshot* out) {
  const unsigned cpus = probes.possible_cpus();
  bool ok = true;
  *out = CounterSnapshot{};
  out->online = ReadOnlineCpus(cpus);

  // Each CPU's value begins with struct mw_cpu; the programs' state follows.
  const uint32_t zero = 0;
  const size_t stride = (probes.cpu_value_size() + 7) / 8 * 8;
  std::vector<char> values(stride * cpus);
  out->cpus.assign(cpus, mw_cpu_counters{});
  if (bpf_map_lookup_elem(probes.cpus_fd(), &zero, values.data()) == 0) {
    for (unsigned cpu = 0; cpu < cpus; ++cpu)
      std::memcpy(&out->cpus[cpu], values.data() + cpu * stride, sizeof(mw_cpu_counters));
    for (const auto& c : out->cpus) {
      for (int r = 0; r < MW_REASON_COUNT; ++r) out->host.migrations[r] += c.migrations[r];
      for (int d = 0; d < MW_DROP_COUNT; ++d) out->host.drops[d] += c.drops[d];
      out->host.same_cpu_events += c.same_cpu_events;
      out->host.affinity_changes += c.affinity_changes;
      out->host.stopper_run_ns += c.stopper_run_ns;
      out->host.stopper_runs += c.stopper_runs;
      out->host.stopper_run_starts_unseen += c.stopper_run_starts_unseen;
      for (int w = 0; w < MW_WORK_COUNT; ++w) {
        out->host.stopper_work_ns[w] += c.stopper_work_ns[w];
        out->host.stopper_work_runs[w] += c.stopper_work_runs[w];
      }
    }
  } else {
    out->cpus.assign(cpus, mw_cpu_counters{});
    ok = false;
  }

  // Key = the CPU moved from or to; one copy per counting CPU. Only present
  // CPUs are keys worth reading: a task only ever moves from or to a CPU
  // that is there. Reading every possible one would cost possible² copies
  // (65,025 on a host whose firmware reports 255).
  const std::vector<bool> present = ReadPresentCpus(cpus);
  std::vector<mw_cpu_moves> copies(cpus);
  out->cpu_moves.assign(cpus, mw_cpu_moves{});
  for (unsigned cpu = 0; cpu < cpus; ++cpu) {
    if (!present[cpu]) continue;
    if (bpf_map_lookup_elem(probes.cpu_moves_fd(), &cpu, copies.data()) != 0) {
      ok = false;
      continue;
    }
    for (const auto& c : copies) {
      out->cpu_moves[cpu].in += c.in;
      out->cpu_moves[cpu].out += c.out;
    }
  }
  // The moves each CPU made itself, counted in its own slot.
  for (unsigned cpu = 0; cpu < cpus; ++cpu) {
    out->cpu_moves[cpu].in += out->cpus[cpu].moves_in_here;
    out->cpu_moves[cpu].out += out->cpus[cpu].moves_out_here;
  }

  out->nr_nodes = probes.nr_nodes();
  out->node_moves.assign(out->nr_nodes * out->nr_nodes, 0);
  std::vector<uint64_t> counts;
  if (LookupArray(probes.node_moves_fd(), out->nr_nodes * out->nr_nodes, cpus, &counts)) {
    for (size_t i = 0; i < out->node_moves.size(); ++i)
      out->node_moves[i] = std::accumulate(counts.begin() + i * cpus, counts.begin() + (i + 1) * cpus, uint64_t{0});
  } else {
    ok = false;
  }
  return ok;
}

bool ReadProcessEntries(const Probes& probes, std::vector<ProcessEntry>* out) {
  out->clear();
  const int fd = probes.process_stats_fd();
  // The hash map's batch cursor is a bucket number; a key-sized buffer
  // holds it on every kernel.
  mw_process_key in_batch{}, out_batch{};
  constexpr uint32_t kChunk = 512;
  std::vector<mw_process_key> keys(kChunk);
  std::vector<mw_process_stats> values(kChunk);
  bool first = true;
  for (;;) {
    uint32_t n = kChunk;
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &in_batch, &out_batch, keys.data(), values.data(), &n,
                                   nullptr);
    const int saved = errno;
    for (uint32_t i = 0; i < n; ++i) out->push_back({keys[i], values[i]});
    if (err) return saved == ENOENT;
    in_batch = out_batch;
    first = false;
  }
}

void AddPending(const mw_stopper_request& r, PendingMoves* out) {
  out->changes.push_back(r.deferred.changes);
  out->changes.push_back(r.charges.flushes);
  // `counted` leaves out wakeups, which are derived (abi.h).
  if (r.deferred.task && r.deferred.counted && !MW_SETTLING(r.deferred.changes))
    ++out->unsettled[r.deferred.process].migrations[std::min<uint32_t>(r.deferred.reason, MW_REASON_OTHER)];
  if (r.charges.held && !MW_SETTLING(r.charges.flushes)) AddCounters(&out->unsettled[r.charges.process], r.charges.counts);
}

bool ReadPendingMoves(const Probes& probes, PendingMoves* out) {
  *out = PendingMoves{};
  // Only CPUs up to the last present one: a stopper runs only where a CPU
  // is, and a CPU's pending move and charges are settled when it goes
  // offline, before it can be removed. Reading all of them copied 512 bytes
  // for every possible CPU, twice or more a collection: 255 of them on a
  // host whose firmware reports 255.
  const std::vector<bool> present = ReadPresentCpus(probes.possible_cpus());
  const auto last = std::find(present.rbegin(), present.rend(), true);
  const auto count = static_cast<uint32_t>(present.rend() - last);
  std::vector<mw_stopper_request> requests;
  if (count == 0 || !LookupArray(probes.stopper_requests_fd(), count, 1, &requests)) return false;
  for (const auto& r : requests) AddPending(r, out);
  return true;
}

void AddCounters(mw_process_stats* to, const mw_process_stats& from) {
  for (int r = 0; r < MW_REASON_COUNT; ++r) to->migrations[r] += from.migrations[r];
  to->exited_migrations += from.exited_migrations;
  to->stopper_moved_ns += from.stopper_moved_ns;
  to->stopper_preempted_ns += from.stopper_preempted_ns;
  to->stopper_requested_ns += from.stopper_requested_ns;
  to->stopper_requested_runs += from.stopper_requested_runs;
  to->affinity_changes += from.affinity_changes;
}

void AddUnsettled(const PendingMoves& after, PendingMoves* before, std::vector<ProcessEntry>* entries) {
  std::map<mw_process_key, size_t> index;
  for (size_t i = 0; i < entries->size(); ++i) index[(*entries)[i].key] = i;
  for (const auto& [key, counts] : after.unsettled) {
    auto it = index.find(key);
    if (it == index.end()) {
      ProcessEntry e;
      e.key = key;
      entries->push_back(e);
      it = index.emplace(key, entries->size() - 1).first;
    }
    AddCounters(&(*entries)[it->second].stats, counts);
  }
  for (const auto& [key, counts] : before->unsettled) {
    const auto later = after.unsettled.find(key);
    const uint64_t was = OtherMigrations(counts);
    const uint64_t is = later == after.unsettled.end() ? 0 : OtherMigrations(later->second);
    if (was > is) before->others[key] += was - is;
  }
}

bool ReadProcessEntry(const Probes& probes, const mw_process_key& key, mw_process_stats* out) {
  return bpf_map_lookup_elem(probes.process_stats_fd(), &key, out) == 0;
}

void DeleteProcessEntries(const Probes& probes, const std::set<mw_process_key>& keys) {
  for (const auto& key : keys) bpf_map_delete_elem(probes.process_stats_fd(), &key);
}

std::vector<std::pair<uint32_t, std::string>> UpdateWatchedThreads(const Probes& probes,
                                                                   const std::vector<uint32_t>& watch,
                                                                   const std::vector<uint32_t>& unwatch) {
  std::vector<std::pair<uint32_t, std::string>> failed;
  const uint8_t one = 1;
  for (uint32_t tid : watch)
    if (bpf_map_update_elem(probes.watched_tids_fd(), &tid, &one, BPF_ANY)) failed.emplace_back(tid, std::strerror(errno));
  // A thread that has exited is gone from the map already.
  for (uint32_t tid : unwatch) bpf_map_delete_elem(probes.watched_tids_fd(), &tid);
  return failed;
}

std::unique_ptr<TaskEventReader> TaskEventReader::Open(const Probes& probes, Deliver deliver, std::string* error) {
  std::unique_ptr<TaskEventReader> reader(new TaskEventReader());
  reader->deliver_ = std::move(deliver);
  reader->buffer_ = ring_buffer__new(probes.task_events_fd(), OnRecord, reader.get(), nullptr);
  if (!reader->buffer_) {
    *error = std::string("cannot open the task ring buffer: ") + std::strerror(errno);
    return nullptr;
  }
  return reader;
}

TaskEventReader::~TaskEventReader() {
  if (buffer_) ring_buffer__free(buffer_);
}

int TaskEventReader::OnRecord(void* ctx, void* data, size_t size) {
  if (size >= sizeof(mw_task_event)) static_cast<TaskEventReader*>(ctx)->deliver_(*static_cast<const mw_task_event*>(data));
  return 0;
}

int TaskEventReader::Consume() { return ring_buffer__consume(buffer_); }

}  // namespace migwatch

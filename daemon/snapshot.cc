#include "migwatch/snapshot.h"

#include <bpf/bpf.h>

#include <cstring>
#include <numeric>

#include "migwatch/probes.h"

namespace migwatch {
namespace {

// A per-CPU map returns one value per possible CPU, each padded to 8 bytes.
template <typename T>
bool LookupPerCpu(int fd, uint32_t key, unsigned cpus, std::vector<T>* values) {
  static_assert(sizeof(T) % 8 == 0, "per-CPU values must be 8-byte multiples");
  values->assign(cpus, T{});
  return bpf_map_lookup_elem(fd, &key, values->data()) == 0;
}

std::string CommOf(const char (&comm)[MW_COMM_LEN]) { return std::string(comm, strnlen(comm, MW_COMM_LEN)); }

// Iterates the keys of a hash map. Keys deleted concurrently may be skipped
// or restart the walk; both are harmless for a snapshot.
template <typename F>
void ForEachKey(int fd, F&& f) {
  uint32_t key = 0, next = 0;
  uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    f(next);
    key = next;
    prev = &key;
  }
}

void SumThread(const std::vector<mw_thread_stats>& values, ThreadCounts* out) {
  *out = ThreadCounts{};
  for (const auto& v : values) {
    if (v.tgid) out->tgid = v.tgid;
    if (out->comm.empty() && v.comm[0]) out->comm = CommOf(v.comm);
    for (int r = 0; r < MW_REASON_COUNT; ++r) out->migrations[r] += v.migrations[r];
  }
}

}  // namespace

uint64_t ThreadCounts::total() const { return std::accumulate(std::begin(migrations), std::end(migrations), uint64_t{0}); }

uint64_t ProcessCounts::total_migrations() const {
  return std::accumulate(std::begin(migrations), std::end(migrations), uint64_t{0});
}

bool ReadCounters(const Probes& probes, CounterSnapshot* out) {
  const unsigned cpus = probes.possible_cpus();
  bool ok = true;
  *out = CounterSnapshot{};

  std::vector<mw_host_stats> host;
  if (LookupPerCpu(probes.host_stats_fd(), 0, cpus, &host)) {
    for (const auto& h : host) {
      for (int r = 0; r < MW_REASON_COUNT; ++r) out->host.migrations[r] += h.migrations[r];
      for (int d = 0; d < MW_DROP_COUNT; ++d) out->host.drops[d] += h.drops[d];
      out->host.same_cpu_events += h.same_cpu_events;
      out->host.affinity_changes += h.affinity_changes;
    }
  } else {
    ok = false;
  }

  out->cpu_moves.assign(cpus, mw_cpu_moves{});
  std::vector<mw_cpu_moves> moves;
  for (unsigned cpu = 0; cpu < cpus; ++cpu) {
    if (!LookupPerCpu(probes.cpu_moves_fd(), cpu, cpus, &moves)) {
      ok = false;
      continue;
    }
    for (const auto& m : moves) {
      out->cpu_moves[cpu].in += m.in;
      out->cpu_moves[cpu].out += m.out;
    }
  }

  out->nr_nodes = probes.nr_nodes();
  out->node_moves.assign(out->nr_nodes * out->nr_nodes, 0);
  std::vector<uint64_t> counts;
  for (unsigned i = 0; i < out->node_moves.size(); ++i) {
    if (!LookupPerCpu(probes.node_moves_fd(), i, cpus, &counts)) {
      ok = false;
      continue;
    }
    out->node_moves[i] = std::accumulate(counts.begin(), counts.end(), uint64_t{0});
  }

  // Slot n of this per-CPU value is written only by CPU n's stopper.
  if (!LookupPerCpu(probes.stopper_stats_fd(), 0, cpus, &out->stopper)) ok = false;
  return ok;
}

bool ReadThread(const Probes& probes, uint32_t tid, ThreadCounts* out) {
  std::vector<mw_thread_stats> values;
  if (!LookupPerCpu(probes.thread_stats_fd(), tid, probes.possible_cpus(), &values)) return false;
  SumThread(values, out);
  return true;
}

std::vector<uint32_t> ListProcesses(const Probes& probes) {
  std::vector<uint32_t> tgids;
  ForEachKey(probes.process_stats_fd(), [&](uint32_t tgid) { tgids.push_back(tgid); });
  return tgids;
}

std::unordered_map<uint32_t, ProcessCounts> ReadProcesses(const Probes& probes) {
  std::unordered_map<uint32_t, ProcessCounts> processes;
  std::vector<mw_process_stats> values;
  ForEachKey(probes.process_stats_fd(), [&](uint32_t tgid) {
    if (!LookupPerCpu(probes.process_stats_fd(), tgid, probes.possible_cpus(), &values)) return;
    ProcessCounts p;
    for (const auto& v : values) {
      if (p.comm.empty() && v.comm[0]) p.comm = CommOf(v.comm);
      p.flags |= v.flags;
      for (int r = 0; r < MW_REASON_COUNT; ++r) p.migrations[r] += v.migrations[r];
      p.stopper_moved_ns += v.stopper_moved_ns;
      p.stopper_requested_ns += v.stopper_requested_ns;
      p.stopper_requested_runs += v.stopper_requested_runs;
      p.affinity_changes += v.affinity_changes;
    }
    processes[tgid] = std::move(p);
  });
  return processes;
}

void ForgetProcess(const Probes& probes, uint32_t tgid) { bpf_map_delete_elem(probes.process_stats_fd(), &tgid); }

}  // namespace migwatch

// Loading and attaching the BPF programs, with a fallback ladder per hook.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "migwatch/abi.h"

struct migwatch_bpf;
struct btf;

namespace migwatch {

/// What the programs should do; fixed once loaded.
struct ProbeOptions {
  bool use_fentry = true;         ///< try fentry programs where the kernel has them
  bool trace = false;             ///< size the trace ring buffer for a trace session
  uint32_t trace_pid = 0;         ///< with trace: only this tid or tgid (0: all)
  uint32_t max_processes = 4096;  ///< per-process map entries
};

/// The outcome for one hook: the mode it got, or why it got none.
struct ProbeStatus {
  std::string name;       ///< the tracepoint or function, e.g. "sched_switch"
  bool required = false;  ///< counts are wrong without it
  mw_probe_mode mode = MW_MODE_NONE;
  std::string why_not;    ///< for MW_MODE_NONE, or for each refused better mode
};

/// Events the kernel did not run a program for: a program is skipped while
/// it already runs on the same CPU (bpf_prog_info.recursion_misses, 5.12+).
struct ProgramMisses {
  std::string program;  ///< BPF program name, e.g. "sched_migrate_task_btf"
  uint64_t misses = 0;
};

/// This CPU's preempt_count minus its runqueue's address, from the per-CPU
/// section offsets in the kernel's BTF; 0 where the BTF does not give both
/// (see bpf/core_fixes.bpf.h).
int64_t PreemptCountFromRunqueue(const btf* vmlinux);

/// Name of a probe mode as used in metric labels ("fentry", "tp_btf", ...).
const char* ProbeModeName(mw_probe_mode mode);

/// The loaded and attached BPF programs and their maps.
///
/// Created by Load(), which returns either a fully attached set or an error:
/// there is no half-attached state. Destruction detaches every link, then
/// frees the programs and maps. Map reads are safe from any thread (they are
/// syscalls on file descriptors); the object must not be destroyed while
/// another thread reads through it.
class Probes {
 public:
  /// Loads and attaches, choosing for each hook the best mode the running
  /// kernel accepts. Returns nullptr and sets `error` if a required hook
  /// cannot be attached in any mode.
  static std::unique_ptr<Probes> Load(const ProbeOptions& options, std::string* error);
  ~Probes();
  Probes(const Probes&) = delete;
  Probes& operator=(const Probes&) = delete;

  /// Every hook this kernel needs, in the order of the BPF object.
  const std::vector<ProbeStatus>& status() const { return status_; }
  /// Possible CPUs: the number of slots in every per-CPU value.
  unsigned possible_cpus() const { return possible_cpus_; }
  unsigned nr_nodes() const { return nr_nodes_; }

  /// The per-CPU map whose values begin with struct mw_cpu (abi.h), and
  /// the size of one value.
  int cpus_fd() const;
  size_t cpu_value_size() const;
  int cpu_moves_fd() const;
  int node_moves_fd() const;
  int process_stats_fd() const;
  int stopper_requests_fd() const;
  int watched_tids_fd() const;
  int trace_events_fd() const;
  int task_events_fd() const;

  /// Runs the task iterator: one record per live thread that has migrated.
  /// False where the iterator is not attached (wakeups are then counted per
  /// process in the process map).
  bool ReadThreadRecords(std::vector<mw_thread_record>* out) const;
  bool has_task_iterator() const { return task_iterator_ != nullptr; }

  /// Which records go to the trace ring buffer: MW_TRACE_BIT()s, 0 for none.
  void SetTracing(uint32_t records);
  /// Recursion misses of every attached program (0 where the kernel does
  /// not report them).
  std::vector<ProgramMisses> Misses() const;

 private:
  Probes() = default;
  struct SkeletonDeleter {
    void operator()(migwatch_bpf* skel) const;
  };
  struct LinkDeleter {
    void operator()(bpf_link* link) const { bpf_link__destroy(link); }
  };
  // Declared after the skeleton: destroyed first, so links go before programs.
  std::unique_ptr<migwatch_bpf, SkeletonDeleter> skel_;
  std::vector<std::unique_ptr<bpf_link, LinkDeleter>> links_;
  std::vector<const bpf_program*> attached_;
  std::vector<ProbeStatus> status_;
  bpf_link* task_iterator_ = nullptr;  // owned by links_
  unsigned possible_cpus_ = 0;
  unsigned nr_nodes_ = 1;
};

}  // namespace migwatch

// Loading and attaching the BPF programs, with a fallback ladder per hook.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "migwatch/abi.h"

struct migwatch_bpf;
struct bpf_map;

namespace migwatch {

/// What the programs should do; fixed once loaded.
struct ProbeOptions {
  bool use_fentry = true;          ///< try fentry programs where the kernel has them
  bool trace = false;              ///< emit per-migration records to the trace ring buffer
  uint32_t trace_pid = 0;          ///< with trace: only this tid or tgid (0: all)
  uint32_t max_threads = 8192;     ///< per-thread LRU map entries
  uint32_t max_processes = 4096;   ///< per-process map entries
};

/// The outcome for one hook: the mode it got, or why it got none.
struct ProbeStatus {
  std::string name;       ///< e.g. "sched_migrate_task", "move_queued_task"
  bool required = false;  ///< counts are wrong without it
  mw_probe_mode mode = MW_MODE_NONE;
  std::string why_not;    ///< for MW_MODE_NONE, or for each refused better mode
};

/// Name of a probe mode as used in metric labels ("fentry", "tp_btf", ...).
const char* ProbeModeName(mw_probe_mode mode);

/// The loaded and attached BPF programs and their maps.
///
/// Created by Load(), which returns either a fully attached set or an error:
/// there is no half-attached state. Destruction detaches every link and
/// frees the maps. Map reads are safe from any thread (they are syscalls on
/// file descriptors); the object itself must not be destroyed while another
/// thread reads through it.
class Probes {
 public:
  /// Loads and attaches, choosing for each hook the best mode the running
  /// kernel accepts. Returns nullptr and sets `error` if a required hook
  /// cannot be attached in any mode.
  static std::unique_ptr<Probes> Load(const ProbeOptions& options, std::string* error);
  ~Probes();
  Probes(const Probes&) = delete;
  Probes& operator=(const Probes&) = delete;

  const std::vector<ProbeStatus>& status() const { return status_; }
  /// Possible CPUs: the number of slots in every per-CPU value.
  unsigned possible_cpus() const { return possible_cpus_; }
  unsigned nr_nodes() const { return nr_nodes_; }

  int host_stats_fd() const;
  int cpu_moves_fd() const;
  int node_moves_fd() const;
  int stopper_stats_fd() const;
  int thread_stats_fd() const;
  int process_stats_fd() const;
  int watched_tids_fd() const;
  bpf_map* trace_events_map() const;
  bpf_map* task_events_map() const;

 private:
  Probes() = default;
  struct SkeletonDeleter {
    void operator()(migwatch_bpf* skel) const;
  };
  std::unique_ptr<migwatch_bpf, SkeletonDeleter> skel_;
  std::vector<ProbeStatus> status_;
  unsigned possible_cpus_ = 0;
  unsigned nr_nodes_ = 1;
};

}  // namespace migwatch

#include "migwatch/probes.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "migwatch/kernel_info.h"
#include "migwatch.skel.h"

namespace migwatch {
namespace {

// One way to attach a hook: a mode and the programs that make it up.
struct Variant {
  mw_probe_mode mode;
  std::vector<const char*> programs;
};

struct Hook {
  const char* name;
  bool required;
  std::vector<Variant> variants;  // best first
};

// Every hook and its ladder. The tracepoint hooks have a tp_btf program
// (direct BTF reads) and a raw_tp twin; fentry hooks only sharpen
// attribution and may end with no mode at all.
const std::vector<Hook>& Hooks() {
  static const std::vector<Hook> hooks = {
      {"sched_migrate_task", true,
       {{MW_MODE_TP_BTF, {"sched_migrate_task_btf"}}, {MW_MODE_RAW_TP, {"sched_migrate_task_raw"}}}},
      {"sched_switch", true,
       {{MW_MODE_TP_BTF, {"sched_switch_btf"}}, {MW_MODE_RAW_TP, {"sched_switch_raw"}}}},
      {"sched_waking", false,
       {{MW_MODE_TP_BTF, {"sched_waking_btf"}}, {MW_MODE_RAW_TP, {"sched_waking_raw"}}}},
      {"softirq", false,
       {{MW_MODE_TP_BTF, {"softirq_entry_btf", "softirq_exit_btf"}},
        {MW_MODE_RAW_TP, {"softirq_entry_raw", "softirq_exit_raw"}}}},
      {"hrtimer_expire", false,
       {{MW_MODE_TP_BTF, {"hrtimer_expire_entry_btf", "hrtimer_expire_exit_btf"}},
        {MW_MODE_RAW_TP, {"hrtimer_expire_entry_raw", "hrtimer_expire_exit_raw"}}}},
      {"cpuhp_enter", false,
       {{MW_MODE_TP_BTF, {"cpuhp_enter_btf"}}, {MW_MODE_RAW_TP, {"cpuhp_enter_raw"}}}},
      {"sched_move_numa", false,
       {{MW_MODE_TP_BTF, {"sched_move_numa_btf"}}, {MW_MODE_RAW_TP, {"sched_move_numa_raw"}}}},
      {"sched_swap_numa", false,
       {{MW_MODE_TP_BTF, {"sched_swap_numa_btf"}}, {MW_MODE_RAW_TP, {"sched_swap_numa_raw"}}}},
      {"syscalls", false,
       {{MW_MODE_TRACEPOINT,
         {"sys_enter_sched_setaffinity_tp", "sys_exit_sched_setaffinity_tp", "sys_enter_execve_tp",
          "sys_exit_execve_tp", "sys_enter_execveat_tp", "sys_exit_execveat_tp"}}}},
      {"task_rename", false,
       {{MW_MODE_TP_BTF, {"task_rename_btf"}}, {MW_MODE_RAW_TP, {"task_rename_raw"}}}},
      {"sched_process_exec", false,
       {{MW_MODE_TP_BTF, {"sched_process_exec_btf"}}, {MW_MODE_RAW_TP, {"sched_process_exec_raw"}}}},
      {"sched_process_exit", false,
       {{MW_MODE_TP_BTF, {"sched_process_exit_btf"}}, {MW_MODE_RAW_TP, {"sched_process_exit_raw"}}}},
      {"move_queued_task", false,
       {{MW_MODE_FENTRY, {"move_queued_task_entry", "move_queued_task_exit"}}}},
      {"migration_cpu_stop", false, {{MW_MODE_FENTRY, {"migration_cpu_stop_entry"}}}},
      {"active_load_balance_cpu_stop", false,
       {{MW_MODE_FENTRY, {"active_load_balance_cpu_stop_entry"}}}},
      {"multi_cpu_stop", false, {{MW_MODE_FENTRY, {"multi_cpu_stop_entry"}}}},
      {"__balance_push_cpu_stop", false, {{MW_MODE_FENTRY, {"balance_push_cpu_stop_entry"}}}},
      {"push_cpu_stop", false, {{MW_MODE_FENTRY, {"push_cpu_stop_entry"}}}},
      {"softlockup_fn", false, {{MW_MODE_FENTRY, {"softlockup_fn_entry"}}}},
  };
  return hooks;
}

// libbpf's messages go to the log at debug level; the last warning is kept
// so that a refused program can say why.
std::mutex g_libbpf_log_mutex;
std::string g_libbpf_last_warning;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  std::string line(buf, n > 0 ? std::min<size_t>(n, sizeof(buf) - 1) : 0);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  if (level == LIBBPF_WARN) {
    std::lock_guard lock(g_libbpf_log_mutex);
    g_libbpf_last_warning = line;
  }
  spdlog::debug("libbpf: {}", line);
  return 0;
}

std::string TakeLastLibbpfWarning() {
  std::lock_guard lock(g_libbpf_log_mutex);
  return std::exchange(g_libbpf_last_warning, {});
}

// "tp_btf/sched_switch" -> "sched_switch"; "tracepoint/syscalls/x" -> "syscalls/x".
std::string TargetOf(const bpf_program* prog) {
  std::string sec = bpf_program__section_name(prog);
  return sec.substr(sec.find('/') + 1);
}

// Whether the kernel can possibly take this program, from its BTF and
// tracefs alone; the load itself has the last word.
std::optional<std::string> StaticRefusal(const bpf_program* prog, mw_probe_mode mode, const btf* vmlinux,
                                         const std::optional<std::string>& tracefs) {
  std::string target = TargetOf(prog);
  switch (mode) {
    case MW_MODE_TP_BTF:
      if (!vmlinux) return "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
      if (btf__find_by_name_kind(vmlinux, ("btf_trace_" + target).c_str(), BTF_KIND_TYPEDEF) < 0)
        return "no BTF for tracepoint " + target;
      return std::nullopt;
    case MW_MODE_FENTRY:
      if (!vmlinux) return "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
      if (btf__find_by_name_kind(vmlinux, target.c_str(), BTF_KIND_FUNC) < 0)
        return "function " + target + " is not in the kernel's BTF (inlined or absent)";
      return std::nullopt;
    case MW_MODE_TRACEPOINT: {
      if (!tracefs) return "tracefs is not available";
      struct stat st;
      if (stat((*tracefs + "/events/" + target).c_str(), &st) != 0) return "no tracepoint " + target;
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

// Loads and attaches a do-nothing fentry program on `function`. Kernels and
// security policies that refuse fentry do it for every function alike, so
// one attempt tells whether trying the real ones is worth a reload.
std::optional<std::string> FentryRefusal(const btf* vmlinux, const char* function) {
  int btf_id = vmlinux ? btf__find_by_name_kind(vmlinux, function, BTF_KIND_FUNC) : -1;
  if (btf_id < 0) return std::string("function ") + function + " is not in the kernel's BTF";
  const struct bpf_insn insns[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
      {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
              .attach_btf_id = static_cast<__u32>(btf_id));
  int prog_fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "mw_fentry_probe", "GPL", insns, 2, &opts);
  if (prog_fd < 0)
    return std::string("the kernel refuses to load fentry programs: ") + std::strerror(errno);
  int link_fd = bpf_link_create(prog_fd, 0, BPF_TRACE_FENTRY, nullptr);
  int saved_errno = errno;
  close(prog_fd);
  if (link_fd < 0)
    return std::string("the kernel refuses to attach fentry programs: ") + std::strerror(saved_errno);
  close(link_fd);
  return std::nullopt;
}

// Sets the read-only configuration and map sizes of a freshly opened skeleton.
bool Configure(migwatch_bpf* skel, const ProbeOptions& options, unsigned possible_cpus,
               const CpuTopology& topo, std::optional<uint64_t> watchdog_fn) {
  auto* ro = skel->rodata;
  ro->trace_enabled = options.trace;
  ro->trace_pid = options.trace_pid;
  unsigned nodes = std::min<unsigned>(topo.nr_nodes, MW_MAX_NODES);
  ro->nr_nodes = nodes;
  for (size_t cpu = 0; cpu < topo.node_of_cpu.size() && cpu < MW_MAX_CPUS; ++cpu)
    ro->cpu_node[cpu] = std::min<unsigned>(topo.node_of_cpu[cpu], nodes - 1);
  ro->watchdog_timer_fn = watchdog_fn.value_or(0);

  auto* maps = &skel->maps;
  return bpf_map__set_max_entries(maps->cpu_moves, possible_cpus) == 0 &&
         bpf_map__set_max_entries(maps->stopper_requests, possible_cpus) == 0 &&
         bpf_map__set_max_entries(maps->cpu_hotplug, possible_cpus) == 0 &&
         bpf_map__set_max_entries(maps->node_moves, nodes * nodes) == 0 &&
         bpf_map__set_max_entries(maps->thread_stats, options.max_threads) == 0 &&
         bpf_map__set_max_entries(maps->process_stats, options.max_processes) == 0 &&
         // Without a trace session the trace ring buffer is never written:
         // keep it at one page.
         bpf_map__set_max_entries(maps->trace_events, options.trace ? (1u << 22) : 4096) == 0;
}

}  // namespace

const char* ProbeModeName(mw_probe_mode mode) {
  switch (mode) {
    case MW_MODE_FENTRY: return "fentry";
    case MW_MODE_TP_BTF: return "tp_btf";
    case MW_MODE_RAW_TP: return "raw_tp";
    case MW_MODE_TRACEPOINT: return "tracepoint";
    default: return "none";
  }
}

void Probes::SkeletonDeleter::operator()(migwatch_bpf* skel) const { migwatch_bpf__destroy(skel); }

Probes::~Probes() = default;

std::unique_ptr<Probes> Probes::Load(const ProbeOptions& options, std::string* error) {
  libbpf_set_print(LibbpfPrint);
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) {
    *error = "cannot read the possible CPUs: " + std::string(std::strerror(-cpus));
    return nullptr;
  }
  CpuTopology topo = ReadCpuTopology();
  std::optional<uint64_t> watchdog_fn = KallsymsAddress("watchdog_timer_fn");
  std::string tracefs_error;
  std::optional<std::string> tracefs = EnsureTracefs(&tracefs_error);
  std::unique_ptr<btf, decltype(&btf__free)> vmlinux(btf__load_vmlinux_btf(), btf__free);

  const auto& hooks = Hooks();
  // Modes ruled out per hook, with the reason; grows on every failed attempt.
  std::map<std::string, std::map<mw_probe_mode, std::string>> refused;
  auto refuse = [&](const Hook& hook, mw_probe_mode mode, const std::string& why) {
    refused[hook.name][mode] = why;
    spdlog::info("probe {}: {} not used: {}", hook.name, ProbeModeName(mode), why);
  };

  std::optional<std::string> fentry_refusal;
  if (!options.use_fentry)
    fentry_refusal = "fentry disabled by --no-fentry";
  else
    fentry_refusal = FentryRefusal(vmlinux.get(), "move_queued_task");
  if (!watchdog_fn) {
    for (const auto& hook : hooks)
      if (std::string(hook.name) == "hrtimer_expire")
        for (const auto& v : hook.variants)
          refuse(hook, v.mode, "watchdog_timer_fn is not visible in /proc/kallsyms");
  }

  // What the kernel's BTF and tracefs rule out is decided once, up front, so
  // that the parsed BTF (megabytes) is freed before libbpf parses its own
  // copy to load.
  {
    std::unique_ptr<migwatch_bpf, SkeletonDeleter> skel(migwatch_bpf__open());
    if (!skel) {
      *error = "cannot open the BPF object: " + std::string(std::strerror(errno));
      return nullptr;
    }
    for (const auto& hook : hooks) {
      for (const auto& variant : hook.variants) {
        if (refused[hook.name].count(variant.mode)) continue;
        std::optional<std::string> why;
        if (variant.mode == MW_MODE_FENTRY && fentry_refusal) why = fentry_refusal;
        for (const char* name : variant.programs) {
          if (why) break;
          bpf_program* p = bpf_object__find_program_by_name(skel->obj, name);
          if (!p) why = std::string("program ") + name + " missing from the BPF object";
          else why = StaticRefusal(p, variant.mode, vmlinux.get(), tracefs);
        }
        if (why) refuse(hook, variant.mode, *why);
      }
    }
  }
  vmlinux.reset();

  // Every failed attempt rules out one (hook, mode), so this ends.
  size_t max_attempts = 1;
  for (const auto& hook : hooks) max_attempts += hook.variants.size();
  for (size_t attempt = 0; attempt < max_attempts; ++attempt) {
    std::unique_ptr<migwatch_bpf, SkeletonDeleter> skel(migwatch_bpf__open());
    if (!skel) {
      *error = "cannot open the BPF object: " + std::string(std::strerror(errno));
      return nullptr;
    }
    if (!Configure(skel.get(), options, cpus, topo, watchdog_fn)) {
      *error = "cannot size the BPF maps";
      return nullptr;
    }
    // Pick the best mode not yet ruled out for every hook.
    std::map<std::string, const Variant*> chosen;
    bpf_program* prog;
    bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, false);
    for (const auto& hook : hooks) {
      for (const auto& variant : hook.variants) {
        if (refused[hook.name].count(variant.mode)) continue;
        chosen[hook.name] = &variant;
        for (const char* name : variant.programs)
          bpf_program__set_autoload(bpf_object__find_program_by_name(skel->obj, name), true);
        break;
      }
    }
    auto hook_of_program = [&](const bpf_program* p) -> std::pair<const Hook*, const Variant*> {
      for (const auto& hook : hooks) {
        auto it = chosen.find(hook.name);
        if (it == chosen.end()) continue;
        for (const char* name : it->second->programs)
          if (std::strcmp(name, bpf_program__name(p)) == 0) return {&hook, it->second};
      }
      return {nullptr, nullptr};
    };

    if (int err = migwatch_bpf__load(skel.get()); err) {
      std::string why = TakeLastLibbpfWarning();
      // Programs load in object order and loading stops at the first
      // failure: the first wanted program without an fd is the culprit.
      const bpf_program* culprit = nullptr;
      bpf_object__for_each_program(prog, skel->obj) {
        if (bpf_program__autoload(prog) && bpf_program__fd(prog) < 0) {
          culprit = prog;
          break;
        }
      }
      auto [hook, variant] = culprit ? hook_of_program(culprit) : std::make_pair(nullptr, nullptr);
      if (!hook) {
        *error = "cannot load the BPF programs: " + std::string(std::strerror(-err)) +
                 (why.empty() ? "" : " (" + why + ")");
        return nullptr;
      }
      refuse(*hook, variant->mode, "load failed: " + std::string(std::strerror(-err)) +
                                       (why.empty() ? "" : " (" + why + ")"));
      continue;
    }

    // Counts for processes beyond the map's capacity land on this key; it
    // must exist before the first program runs.
    std::vector<mw_process_stats> overflow_value(cpus);
    uint32_t overflow = MW_OVERFLOW_TGID;
    std::strncpy(overflow_value[0].comm, "[overflow]", MW_COMM_LEN - 1);
    if (bpf_map_update_elem(bpf_map__fd(skel->maps.process_stats), &overflow, overflow_value.data(),
                            BPF_ANY)) {
      *error = "cannot initialise the process map: " + std::string(std::strerror(errno));
      return nullptr;
    }

    bool attached_all = true;
    bpf_object__for_each_program(prog, skel->obj) {
      if (!bpf_program__autoload(prog)) continue;
      bpf_link* link = bpf_program__attach(prog);
      if (!link) {
        int err = errno;
        auto [hook, variant] = hook_of_program(prog);
        if (!hook) {
          *error = std::string("cannot attach ") + bpf_program__name(prog) + ": " + std::strerror(err);
          return nullptr;
        }
        refuse(*hook, variant->mode, std::string("attach failed: ") + std::strerror(err));
        attached_all = false;
        break;
      }
      // The skeleton owns the links so that destroying it detaches them.
      for (size_t i = 0; i < static_cast<size_t>(skel->skeleton->prog_cnt); ++i)
        if (*skel->skeleton->progs[i].prog == prog) *skel->skeleton->progs[i].link = link;
    }
    if (!attached_all) continue;

    auto probes = std::unique_ptr<Probes>(new Probes());
    probes->possible_cpus_ = cpus;
    probes->nr_nodes_ = std::min<unsigned>(topo.nr_nodes, MW_MAX_NODES);
    for (const auto& hook : hooks) {
      ProbeStatus status{hook.name, hook.required, MW_MODE_NONE, {}};
      if (auto it = chosen.find(hook.name); it != chosen.end()) status.mode = it->second->mode;
      for (const auto& [mode, why] : refused[hook.name]) {
        if (!status.why_not.empty()) status.why_not += "; ";
        status.why_not += std::string(ProbeModeName(mode)) + ": " + why;
      }
      if (hook.required && status.mode == MW_MODE_NONE) {
        *error = std::string("required probe ") + hook.name + " cannot be attached (" + status.why_not + ")";
        return nullptr;
      }
      probes->status_.push_back(std::move(status));
    }
    probes->skel_ = std::move(skel);
    return probes;
  }
  *error = "no combination of probe modes loads on this kernel";
  return nullptr;
}

int Probes::host_stats_fd() const { return bpf_map__fd(skel_->maps.host_stats); }
int Probes::cpu_moves_fd() const { return bpf_map__fd(skel_->maps.cpu_moves); }
int Probes::node_moves_fd() const { return bpf_map__fd(skel_->maps.node_moves); }
int Probes::stopper_stats_fd() const { return bpf_map__fd(skel_->maps.stopper_stats); }
int Probes::thread_stats_fd() const { return bpf_map__fd(skel_->maps.thread_stats); }
int Probes::process_stats_fd() const { return bpf_map__fd(skel_->maps.process_stats); }
int Probes::watched_tids_fd() const { return bpf_map__fd(skel_->maps.watched_tids); }
bpf_map* Probes::trace_events_map() const { return skel_->maps.trace_events; }
bpf_map* Probes::task_events_map() const { return skel_->maps.task_events; }

}  // namespace migwatch

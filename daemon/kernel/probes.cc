#include "migwatch/kernel/probes.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "migwatch/kernel/kernel_info.h"
#include "migwatch/kernel/proc/stat.h"
#include "migwatch.skel.h"

namespace migwatch {
namespace {

// Counts are wrong without these; every other hook only sharpens attribution.
const std::set<std::string> kRequiredHooks = {"sched_migrate_task", "sched_switch"};
// The iterator of every thread's se.nr_migrations; without it wakeups are
// counted per process on every wakeup migration (abi.h).
constexpr char kTaskIterator[] = "task";

// One way to attach a hook: a mode and the programs that make it up.
struct Variant {
  mw_probe_mode mode;
  std::vector<std::string> programs;
};

struct Hook {
  std::string name;
  bool required = false;
  std::vector<Variant> variants;  // best first
};

std::unique_ptr<btf, decltype(&btf__free)> LoadVmlinuxBtf() {
  return {btf__load_vmlinux_btf(), btf__free};
}

// The hook table is the BPF object's own section names: "tp_btf/X" and
// "raw_tp/X" are tracepoint X's twins, "fentry/X" and "fexit/X" function X's
// programs. Modes are preferred in enum order: fentry, tp_btf, raw_tp.
std::vector<Hook> HooksOf(bpf_object* obj, std::string* error) {
  std::vector<Hook> hooks;
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    const std::string sec = bpf_program__section_name(prog);
    const size_t slash = sec.find('/');
    const std::string kind = sec.substr(0, slash), target = sec.substr(slash + 1);
    mw_probe_mode mode = kind == "tp_btf"                       ? MW_MODE_TP_BTF
                         : kind == "raw_tp"                     ? MW_MODE_RAW_TP
                         : kind == "fentry" || kind == "fexit" ? MW_MODE_FENTRY
                         : kind == "iter"                       ? MW_MODE_ITER
                                                                : MW_MODE_NONE;
    if (slash == std::string::npos || mode == MW_MODE_NONE) {
      *error = "program " + std::string(bpf_program__name(prog)) + " has an unknown section " + sec;
      return {};
    }
    auto hook = std::find_if(hooks.begin(), hooks.end(), [&](const Hook& h) { return h.name == target; });
    if (hook == hooks.end()) hook = hooks.insert(hooks.end(), Hook{target, kRequiredHooks.count(target) > 0, {}});
    auto variant = std::find_if(hook->variants.begin(), hook->variants.end(),
                                [&](const Variant& v) { return v.mode == mode; });
    if (variant == hook->variants.end()) variant = hook->variants.insert(hook->variants.end(), Variant{mode, {}});
    variant->programs.push_back(bpf_program__name(prog));
  }
  for (auto& hook : hooks)
    std::sort(hook.variants.begin(), hook.variants.end(),
              [](const Variant& a, const Variant& b) { return a.mode < b.mode; });
  return hooks;
}

bool BtfHas(const btf* vmlinux, const char* name, int kind) {
  return vmlinux && btf__find_by_name_kind(vmlinux, name, kind) >= 0;
}

// Offset of a per-CPU variable in the kernel's per-CPU section, from BTF.
std::optional<int64_t> PerCpuOffset(const btf* vmlinux, const char* name) {
  const int sec_id = vmlinux ? btf__find_by_name_kind(vmlinux, ".data..percpu", BTF_KIND_DATASEC) : -1;
  if (sec_id < 0) return std::nullopt;
  const btf_type* sec = btf__type_by_id(vmlinux, sec_id);
  const btf_var_secinfo* var = btf_var_secinfos(sec);
  for (int i = 0; i < btf_vlen(sec); ++i, ++var) {
    const btf_type* t = btf__type_by_id(vmlinux, var->type);
    if (t && std::strcmp(btf__name_by_offset(vmlinux, t->name_off), name) == 0) return var->offset;
  }
  return std::nullopt;
}

// Byte offset of `member` in struct `type`, from BTF.
std::optional<int64_t> MemberOffset(const btf* vmlinux, const char* type, const char* member) {
  const int id = vmlinux ? btf__find_by_name_kind(vmlinux, type, BTF_KIND_STRUCT) : -1;
  if (id < 0) return std::nullopt;
  const btf_type* t = btf__type_by_id(vmlinux, id);
  const btf_member* m = btf_members(t);
  for (int i = 0; i < btf_vlen(t); ++i, ++m)
    if (std::strcmp(btf__name_by_offset(vmlinux, m->name_off), member) == 0)
      return btf_member_bit_offset(t, i) / 8;
  return std::nullopt;
}

}  // namespace

int64_t PreemptCountFromRunqueue(const btf* vmlinux) {
  if (!MemberOffset(vmlinux, "cfs_rq", "rq")) return 0;  // no CONFIG_FAIR_GROUP_SCHED
  auto runqueues = PerCpuOffset(vmlinux, "runqueues");
  if (!runqueues) return 0;
  if (auto count = PerCpuOffset(vmlinux, "__preempt_count")) return *count - *runqueues;
  auto hot = PerCpuOffset(vmlinux, "pcpu_hot");
  auto field = MemberOffset(vmlinux, "pcpu_hot", "preempt_count");
  if (hot && field) return *hot + *field - *runqueues;
  return 0;
}

namespace {

// Hooks only some kernels need (see bpf/core_fixes.bpf.h): why this kernel
// does not, or nullopt if it does.
std::optional<std::string> NotNeeded(const std::string& hook, const btf* vmlinux) {
  if (hook == "softirq_entry" || hook == "softirq_exit") {
    if (PreemptCountFromRunqueue(vmlinux)) return "preempt_count is found through the kernel's BTF";
  }
  if (hook == "move_queued_task" && BtfHas(vmlinux, "__balance_push_cpu_stop", BTF_KIND_FUNC))
    return "CPU teardown moves are traced on this kernel";
  return std::nullopt;
}

// libbpf's messages go to the log at debug level; the last warning is kept
// so that a refused program can say why.
std::mutex g_libbpf_log_mutex;
std::string g_libbpf_last_warning;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  // A verifier log can be long: measure first, then format it whole.
  va_list again;
  va_copy(again, args);
  const int n = vsnprintf(nullptr, 0, fmt, args);
  std::string line(n > 0 ? n : 0, '\0');
  if (n > 0) vsnprintf(line.data(), line.size() + 1, fmt, again);
  va_end(again);
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

// Whether the kernel can possibly take this program, from its BTF alone; the
// load itself has the last word.
std::optional<std::string> StaticRefusal(const std::string& target, mw_probe_mode mode, const btf* vmlinux) {
  switch (mode) {
    case MW_MODE_TP_BTF:
      if (!vmlinux) return "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
      if (!BtfHas(vmlinux, ("btf_trace_" + target).c_str(), BTF_KIND_TYPEDEF))
        return "no BTF for tracepoint " + target;
      return std::nullopt;
    case MW_MODE_FENTRY:
      if (!vmlinux) return "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
      if (!BtfHas(vmlinux, target.c_str(), BTF_KIND_FUNC))
        return "function " + target + " is not in the kernel's BTF (inlined or absent)";
      return std::nullopt;
    case MW_MODE_ITER:
      if (!BtfHas(vmlinux, ("bpf_iter__" + target).c_str(), BTF_KIND_STRUCT))
        return "the kernel has no " + target + " iterator";
      return std::nullopt;
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
bool Configure(migwatch_bpf* skel, const ProbeOptions& options, unsigned possible_cpus, const CpuTopology& topo,
               int64_t preempt_count_from_rq, bool with_task_iterator) {
  auto* ro = skel->rodata;
  ro->trace_pid = options.trace_pid;
  ro->preempt_count_from_rq = preempt_count_from_rq;
  ro->count_wakeups = !with_task_iterator;
  ro->possible_cpus = possible_cpus;
  const unsigned nodes = std::min<unsigned>(topo.nr_nodes, MW_MAX_NODES);
  ro->nr_nodes = nodes;

  auto* maps = &skel->maps;
  return bpf_map__set_max_entries(maps->cpu_moves, possible_cpus) == 0 &&
         bpf_map__set_max_entries(maps->stopper_requests, possible_cpus) == 0 &&
         bpf_map__set_max_entries(maps->cpu_nodes, possible_cpus) == 0 &&
         bpf_map__set_max_entries(maps->node_moves, nodes * nodes) == 0 &&
         bpf_map__set_max_entries(maps->process_stats, options.max_processes) == 0 &&
         // Without a trace session the trace ring buffer is never written:
         // keep it at one page.
         bpf_map__set_max_entries(maps->trace_events, options.trace ? (1u << 22) : 4096) == 0;
}

// The migration/N thread of every CPU that has one now, from /proc.
std::map<unsigned, uint32_t> StopperThreads() {
  std::map<unsigned, uint32_t> stoppers;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    pid_t pid = 0;
    if (std::from_chars(name.data(), name.data() + name.size(), pid).ec != std::errc()) continue;
    auto stat = ReadProcessStat(pid);
    if (!stat || !stat->IsKernelThread() || stat->comm.rfind("migration/", 0) != 0) continue;
    unsigned cpu = 0;
    const std::string digits = stat->comm.substr(10);
    auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), cpu);
    if (err == std::errc() && end == digits.data() + digits.size()) stoppers[cpu] = static_cast<uint32_t>(pid);
  }
  return stoppers;
}

// Writes the stopper pids the programs compare with on every context switch
// (abi.h: mw_cpu and mw_stopper_request), so that they never need to
// recognise a stopper by its name.
bool SeedStopperPids(migwatch_bpf* skel, unsigned cpus, std::string* error) {
  const auto stoppers = StopperThreads();
  const size_t slot_size = (bpf_map__value_size(skel->maps.cpus) + 7) / 8 * 8;
  std::vector<char> slots(slot_size * cpus, 0);
  for (const auto& [cpu, pid] : stoppers) {
    if (cpu >= cpus) continue;
    mw_cpu shared{};
    shared.stopper_pid = pid;
    std::memcpy(slots.data() + cpu * slot_size, &shared, sizeof(shared));
    mw_stopper_request request{};
    request.stopper_pid = pid;
    const uint32_t key = cpu;
    if (bpf_map_update_elem(bpf_map__fd(skel->maps.stopper_requests), &key, &request, BPF_ANY)) {
      *error = std::string("cannot seed the stopper map: ") + std::strerror(errno);
      return false;
    }
  }
  const uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(skel->maps.cpus), &zero, slots.data(), BPF_ANY)) {
    *error = std::string("cannot seed the CPU state map: ") + std::strerror(errno);
    return false;
  }
  spdlog::debug("{} stopper threads found in /proc", stoppers.size());
  return true;
}

// The NUMA node of every CPU.
bool SeedTopology(migwatch_bpf* skel, unsigned cpus, const CpuTopology& topo, std::string* error) {
  const unsigned nodes = std::min<unsigned>(topo.nr_nodes, MW_MAX_NODES);
  for (uint32_t cpu = 0; cpu < cpus && cpu < topo.node_of_cpu.size(); ++cpu) {
    const uint32_t node = std::min<unsigned>(topo.node_of_cpu[cpu], nodes - 1);
    if (bpf_map_update_elem(bpf_map__fd(skel->maps.cpu_nodes), &cpu, &node, BPF_ANY)) {
      *error = std::string("cannot write the CPU topology: ") + std::strerror(errno);
      return false;
    }
  }
  return true;
}

// Counts for processes beyond the map's capacity land on this key; it must
// exist before the first program runs.
bool SeedOverflowProcess(migwatch_bpf* skel, std::string* error) {
  mw_process_key key{};
  key.tgid = MW_OVERFLOW_TGID;
  mw_process_stats value{};
  std::strncpy(value.comm, "[overflow]", MW_COMM_LEN - 1);
  if (bpf_map_update_elem(bpf_map__fd(skel->maps.process_stats), &key, &value, BPF_ANY)) {
    *error = "cannot initialise the process map: " + std::string(std::strerror(errno));
    return false;
  }
  return true;
}

}  // namespace

const char* ProbeModeName(mw_probe_mode mode) {
  switch (mode) {
    case MW_MODE_FENTRY: return "fentry";
    case MW_MODE_TP_BTF: return "tp_btf";
    case MW_MODE_RAW_TP: return "raw_tp";
    case MW_MODE_ITER: return "iter";
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
  const CpuTopology topo = ReadCpuTopology();

  // Modes ruled out per hook, with the reason; grows on every failed attempt.
  std::map<std::string, std::map<mw_probe_mode, std::string>> refused;
  auto refuse = [&](const Hook& hook, mw_probe_mode mode, const std::string& why) {
    refused[hook.name][mode] = why;
    spdlog::info("probe {}: {} not used: {}", hook.name, ProbeModeName(mode), why);
  };

  // What the kernel's BTF rules out is decided once, up front, so that the
  // parsed BTF (megabytes) is freed before libbpf parses its own copy to load.
  std::vector<Hook> hooks;
  int64_t preempt_count_from_rq = 0;
  {
    std::unique_ptr<migwatch_bpf, SkeletonDeleter> skel(migwatch_bpf__open());
    if (!skel) {
      *error = "cannot open the BPF object: " + std::string(std::strerror(errno));
      return nullptr;
    }
    hooks = HooksOf(skel->obj, error);
    if (hooks.empty()) return nullptr;
    auto vmlinux = LoadVmlinuxBtf();
    preempt_count_from_rq = PreemptCountFromRunqueue(vmlinux.get());
    std::erase_if(hooks, [&](const Hook& hook) {
      auto why = NotNeeded(hook.name, vmlinux.get());
      if (why) spdlog::debug("probe {} not needed: {}", hook.name, *why);
      return why.has_value();
    });
    std::optional<std::string> fentry_refusal;
    if (!options.use_fentry)
      fentry_refusal = "fentry disabled by --no-fentry";
    else
      fentry_refusal = FentryRefusal(vmlinux.get(), "migration_cpu_stop");
    for (const auto& hook : hooks) {
      for (const auto& variant : hook.variants) {
        auto why = variant.mode == MW_MODE_FENTRY && fentry_refusal
                       ? fentry_refusal
                       : StaticRefusal(hook.name, variant.mode, vmlinux.get());
        if (why) refuse(hook, variant.mode, *why);
      }
    }
  }

  // Every failed attempt rules out one (hook, mode), so this ends.
  size_t max_attempts = 1;
  for (const auto& hook : hooks) max_attempts += hook.variants.size();
  for (size_t attempt = 0; attempt < max_attempts; ++attempt) {
    std::unique_ptr<migwatch_bpf, SkeletonDeleter> skel(migwatch_bpf__open());
    if (!skel) {
      *error = "cannot open the BPF object: " + std::string(std::strerror(errno));
      return nullptr;
    }
    const bool with_task_iterator = !refused[kTaskIterator].count(MW_MODE_ITER);
    if (!Configure(skel.get(), options, cpus, topo, preempt_count_from_rq, with_task_iterator)) {
      *error = "cannot size the BPF maps";
      return nullptr;
    }
    // Pick the best mode not yet ruled out for every hook.
    std::map<std::string, std::pair<const Hook*, const Variant*>> chosen_by_program;
    std::map<std::string, mw_probe_mode> chosen_mode;
    bpf_program* prog;
    bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, false);
    for (const auto& hook : hooks) {
      for (const auto& variant : hook.variants) {
        if (refused[hook.name].count(variant.mode)) continue;
        chosen_mode[hook.name] = variant.mode;
        for (const auto& name : variant.programs) {
          chosen_by_program[name] = {&hook, &variant};
          bpf_program__set_autoload(bpf_object__find_program_by_name(skel->obj, name.c_str()), true);
        }
        break;
      }
    }
    auto refuse_program = [&](const bpf_program* p, const std::string& why) {
      auto it = chosen_by_program.find(bpf_program__name(p));
      if (it == chosen_by_program.end()) return false;
      refuse(*it->second.first, it->second.second->mode, why);
      return true;
    };

    if (int err = migwatch_bpf__load(skel.get()); err) {
      std::string why = TakeLastLibbpfWarning();
      std::string what = std::string(std::strerror(-err)) + (why.empty() ? "" : " (" + why + ")");
      // Programs load in object order and loading stops at the first
      // failure: the first wanted program without an fd is the culprit.
      const bpf_program* culprit = nullptr;
      bpf_object__for_each_program(prog, skel->obj) {
        if (bpf_program__autoload(prog) && bpf_program__fd(prog) < 0) {
          culprit = prog;
          break;
        }
      }
      if (!culprit || !refuse_program(culprit, "load failed: " + what)) {
        *error = "cannot load the BPF programs: " + what;
        return nullptr;
      }
      continue;
    }
    if (!SeedOverflowProcess(skel.get(), error) || !SeedStopperPids(skel.get(), cpus, error) ||
        !SeedTopology(skel.get(), cpus, topo, error))
      return nullptr;

    auto probes = std::unique_ptr<Probes>(new Probes());
    bool attached_all = true;
    bpf_object__for_each_program(prog, skel->obj) {
      if (!bpf_program__autoload(prog)) continue;
      bpf_link* link = bpf_program__section_name(prog) == std::string("iter/") + kTaskIterator
                           ? bpf_program__attach_iter(prog, nullptr)
                           : bpf_program__attach(prog);
      if (!link) {
        const int err = errno;
        if (!refuse_program(prog, std::string("attach failed: ") + std::strerror(err))) {
          *error = std::string("cannot attach ") + bpf_program__name(prog) + ": " + std::strerror(err);
          return nullptr;
        }
        attached_all = false;
        break;
      }
      probes->links_.emplace_back(link);
      probes->attached_.push_back(prog);
      if (chosen_mode[kTaskIterator] == MW_MODE_ITER && bpf_program__section_name(prog) == std::string("iter/") + kTaskIterator)
        probes->task_iterator_ = link;
    }
    if (!attached_all) continue;  // `probes` detaches what it attached

    probes->possible_cpus_ = cpus;
    probes->nr_nodes_ = std::min<unsigned>(topo.nr_nodes, MW_MAX_NODES);
    for (const auto& hook : hooks) {
      ProbeStatus status{hook.name, hook.required, MW_MODE_NONE, {}};
      if (auto it = chosen_mode.find(hook.name); it != chosen_mode.end()) status.mode = it->second;
      for (const auto& [mode, why] : refused[hook.name]) {
        if (!status.why_not.empty()) status.why_not += "; ";
        status.why_not += std::string(ProbeModeName(mode)) + ": " + why;
      }
      if (hook.required && status.mode == MW_MODE_NONE) {
        *error = "required probe " + hook.name + " cannot be attached (" + status.why_not + ")";
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

int Probes::cpus_fd() const { return bpf_map__fd(skel_->maps.cpus); }
size_t Probes::cpu_value_size() const { return bpf_map__value_size(skel_->maps.cpus); }
int Probes::cpu_moves_fd() const { return bpf_map__fd(skel_->maps.cpu_moves); }
int Probes::node_moves_fd() const { return bpf_map__fd(skel_->maps.node_moves); }
int Probes::process_stats_fd() const { return bpf_map__fd(skel_->maps.process_stats); }
int Probes::stopper_requests_fd() const { return bpf_map__fd(skel_->maps.stopper_requests); }
int Probes::watched_tids_fd() const { return bpf_map__fd(skel_->maps.watched_tids); }
int Probes::trace_events_fd() const { return bpf_map__fd(skel_->maps.trace_events); }
int Probes::task_events_fd() const { return bpf_map__fd(skel_->maps.task_events); }

// The programs read the switch from their memory-mapped .bss (bpf/maps.bpf.h).
void Probes::SetTracing(uint32_t records) { __atomic_store_n(&skel_->bss->trace_on, records, __ATOMIC_RELEASE); }

bool Probes::ReadThreadRecords(std::vector<mw_thread_record>* out) const {
  out->clear();
  if (!task_iterator_) return false;
  const int fd = bpf_iter_create(bpf_link__fd(task_iterator_));
  if (fd < 0) return false;
  char buf[sizeof(mw_thread_record) * 512];
  size_t have = 0;
  bool ok = true;
  for (;;) {
    const ssize_t n = read(fd, buf + have, sizeof(buf) - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ok = false;
      break;
    }
    if (n == 0) break;
    have += n;
    const size_t whole = have / sizeof(mw_thread_record);
    const auto* records = reinterpret_cast<const mw_thread_record*>(buf);
    out->insert(out->end(), records, records + whole);
    std::memmove(buf, buf + whole * sizeof(mw_thread_record), have - whole * sizeof(mw_thread_record));
    have -= whole * sizeof(mw_thread_record);
  }
  close(fd);
  return ok;
}

std::vector<ProgramMisses> Probes::Misses() const {
  std::vector<ProgramMisses> misses;
  for (const bpf_program* prog : attached_) {
    if (bpf_program__section_name(prog) == std::string("iter/") + kTaskIterator) continue;
    bpf_prog_info info{};
    __u32 length = sizeof(info);
    ProgramMisses m{bpf_program__name(prog), 0};
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &length) == 0 &&
        length >= offsetof(bpf_prog_info, recursion_misses) + sizeof(info.recursion_misses))
      m.misses = info.recursion_misses;
    misses.push_back(std::move(m));
  }
  return misses;
}

}  // namespace migwatch

#include "migwatch/kernel/preflight.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <cap-ng.h>
#include <linux/capability.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

namespace migwatch {
namespace {

// The oldest kernel the project is tested on (tests/vm).
constexpr int kOldestTestedMajor = 5, kOldestTestedMinor = 10;

PreflightItem Kernel() {
  struct utsname u;
  if (uname(&u) != 0) return {"kernel", PreflightStatus::kWarn, "uname(2) failed"};
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  const std::string detail = std::string(u.release) + " " + u.machine;
  if (major > kOldestTestedMajor || (major == kOldestTestedMajor && minor >= kOldestTestedMinor))
    return {"kernel", PreflightStatus::kPass, detail};
  return {"kernel", PreflightStatus::kWarn,
          detail + ": older than " + std::to_string(kOldestTestedMajor) + "." + std::to_string(kOldestTestedMinor) +
              ", the oldest kernel migwatch is tested on"};
}

// Every program reads kernel structures through CO-RE relocations, which
// libbpf resolves against the kernel's BTF (searched in the same places as
// here): without it nothing loads, in any mode.
PreflightItem Btf() {
  // libbpf would print its own warning on stderr: the detail says it.
  libbpf_print_fn_t print = libbpf_set_print(nullptr);
  std::unique_ptr<btf, decltype(&btf__free)> vmlinux(btf__load_vmlinux_btf(), btf__free);
  libbpf_set_print(print);
  if (!vmlinux)
    return {"BTF", PreflightStatus::kFail,
            "the kernel has no BTF (/sys/kernel/btf/vmlinux, from CONFIG_DEBUG_INFO_BTF=y): the BPF programs cannot "
            "be relocated to this kernel's structures"};
  return {"BTF", PreflightStatus::kPass,
          "/sys/kernel/btf/vmlinux, " + std::to_string(btf__type_cnt(vmlinux.get())) + " types"};
}

PreflightItem Privileges() {
  if (capng_get_caps_process() != 0)
    return {"privileges", PreflightStatus::kFail, "cannot read this process's capabilities"};
  auto has = [](unsigned cap) { return capng_have_capability(CAPNG_EFFECTIVE, cap) != 0; };
  auto yes_no = [&](unsigned cap) { return has(cap) ? "yes" : "no"; };
  const std::string found = "euid " + std::to_string(geteuid()) + ", CAP_BPF " + yes_no(CAP_BPF) +
                            ", CAP_PERFMON " + yes_no(CAP_PERFMON) + ", CAP_SYS_ADMIN " + yes_no(CAP_SYS_ADMIN);
  // Tracing programs need both CAP_BPF and CAP_PERFMON; kernels before 5.8
  // know neither and ask for CAP_SYS_ADMIN, which also stands for both later.
  if ((has(CAP_BPF) && has(CAP_PERFMON)) || has(CAP_SYS_ADMIN))
    return {"privileges", PreflightStatus::kPass, found};
  std::string missing;
  for (auto [cap, name] : {std::pair{CAP_BPF, "CAP_BPF"}, std::pair{CAP_PERFMON, "CAP_PERFMON"}})
    if (!has(cap)) missing += std::string(missing.empty() ? "" : " and ") + name;
  return {"privileges", PreflightStatus::kFail,
          "loading the BPF programs needs root, or CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8); this "
          "process lacks " + missing + " (" + found + ")"};
}

}  // namespace

std::vector<PreflightItem> RunPreflight() { return {Kernel(), Btf(), Privileges()}; }

}  // namespace migwatch

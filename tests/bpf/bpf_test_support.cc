#include "bpf_test_support.h"

#include <filesystem>

#include "migwatch/proc/schedstat.h"
#include "migwatch/proc/stat.h"

namespace migwatch::testing {

std::optional<pid_t> StopperPid(int cpu) {
  const std::string want = "migration/" + std::to_string(cpu);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto stat = ReadProcessStat(std::stoi(name));
    if (stat && stat->IsKernelThread() && stat->comm == want) return stat->pid;
  }
  return std::nullopt;
}

std::optional<uint64_t> SchedstatRuntimeNs(pid_t pid) {
  auto s = ReadProcessSchedStat(pid);
  if (!s) return std::nullopt;
  return s->run_ns;
}

}  // namespace migwatch::testing

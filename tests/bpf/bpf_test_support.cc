#include "bpf_test_support.h"

#include <filesystem>

#include "migwatch/kernel/proc/sched.h"
#include "migwatch/kernel/proc/schedstat.h"
#include "migwatch/kernel/proc/stat.h"

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

std::optional<uint64_t> LiveThreadMigrations(pid_t pid) {
  uint64_t sum = 0;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    auto n = ReadNrMigrations(pid, std::stoi(task.path().filename()));
    if (!n) return std::nullopt;
    sum += *n;
  }
  if (ec) return std::nullopt;
  return sum;
}

}  // namespace migwatch::testing

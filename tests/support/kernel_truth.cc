#include "support/kernel_truth.h"

#include <filesystem>
#include <string>
#include <thread>

#include "migwatch/kernel/proc/schedstat.h"
#include "migwatch/kernel/proc/stat.h"
#include "migwatch/kernel/proc/status.h"

namespace migwatch::testing {

std::vector<pid_t> ThreadsOf(pid_t pid) {
  std::vector<pid_t> tids;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec))
    tids.push_back(std::stoi(task.path().filename()));
  return tids;
}

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

bool WaitForStoppersToSleep(const std::vector<int>& cpus, std::chrono::milliseconds timeout) {
  std::vector<pid_t> stoppers;
  for (int cpu : cpus) {
    auto pid = StopperPid(cpu);
    if (!pid) return false;
    stoppers.push_back(*pid);
  }
  // A run ends with a voluntary switch: asleep with the same count of them
  // on both sides of a pause, the stopper did not run in between.
  const auto asleep = [&](std::vector<std::string>* switches) {
    switches->clear();
    for (pid_t pid : stoppers) {
      auto stat = ReadProcessStat(pid);
      auto n = ReadStatusField(pid, "voluntary_ctxt_switches");
      if (!stat || stat->state != 'S' || !n) return false;
      switches->push_back(*n);
    }
    return true;
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> before, after;
  while (std::chrono::steady_clock::now() < deadline) {
    const bool was_asleep = asleep(&before);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (was_asleep && asleep(&after) && before == after) return true;
  }
  return false;
}

std::optional<uint64_t> SchedstatRuntimeNs(pid_t pid) {
  auto s = ReadProcessSchedStat(pid);
  if (!s) return std::nullopt;
  return s->run_ns;
}

uint64_t RssBytes(pid_t pid) {
  auto field = ReadStatusField(pid, "VmRSS");  // "1234 kB"
  return field ? std::stoull(*field) * 1024 : 0;
}

}  // namespace migwatch::testing

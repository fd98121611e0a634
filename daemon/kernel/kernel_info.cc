#include "migwatch/kernel/kernel_info.h"

#include <sys/utsname.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace migwatch {
namespace {

std::optional<unsigned> ParseUnsigned(std::string_view s) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<std::vector<unsigned>> ParseCpuList(std::string_view list) {
  std::vector<unsigned> cpus;
  while (!list.empty() && (list.back() == '\n' || list.back() == ' ')) list.remove_suffix(1);
  if (list.empty()) return cpus;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string_view range = list.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    size_t dash = range.find('-');
    auto first = ParseUnsigned(range.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : ParseUnsigned(range.substr(dash + 1));
    // Bounded: a CPU list names at most a few thousand CPUs.
    if (!first || !last || *last < *first || *last >= 65536) return std::nullopt;
    for (unsigned cpu = *first; cpu <= *last; ++cpu) cpus.push_back(cpu);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return cpus;
}

CpuTopology ReadCpuTopology(const std::string& sysfs_root) {
  namespace fs = std::filesystem;
  CpuTopology topo;
  std::error_code ec;
  fs::path nodes = fs::path(sysfs_root) / "devices/system/node";
  for (const auto& entry : fs::directory_iterator(nodes, ec)) {
    std::string name = entry.path().filename();
    if (name.rfind("node", 0) != 0) continue;
    auto node = ParseUnsigned(std::string_view(name).substr(4));
    if (!node) continue;
    std::ifstream in(entry.path() / "cpulist");
    std::string line;
    std::getline(in, line);
    auto cpus = ParseCpuList(line);
    if (!cpus) continue;
    topo.nr_nodes = std::max(topo.nr_nodes, *node + 1);
    for (unsigned cpu : *cpus) {
      if (cpu >= topo.node_of_cpu.size()) topo.node_of_cpu.resize(cpu + 1, 0);
      topo.node_of_cpu[cpu] = static_cast<uint16_t>(*node);
    }
  }
  return topo;
}

namespace {

// <sysfs_root>/devices/system/cpu/<name> as a mask of `possible` CPUs; all
// of them if it cannot be read.
std::vector<bool> ReadCpuListFile(const std::string& name, size_t possible, const std::string& sysfs_root) {
  std::ifstream in(sysfs_root + "/devices/system/cpu/" + name);
  std::string list;
  std::getline(in, list);
  const auto cpus = ParseCpuList(list);
  if (!in || !cpus) return std::vector<bool>(possible, true);
  std::vector<bool> mask(possible, false);
  for (unsigned cpu : *cpus)
    if (cpu < possible) mask[cpu] = true;
  return mask;
}

}  // namespace

std::vector<bool> ReadOnlineCpus(size_t possible, const std::string& sysfs_root) {
  return ReadCpuListFile("online", possible, sysfs_root);
}

std::vector<bool> ReadPresentCpus(size_t possible, const std::string& sysfs_root) {
  return ReadCpuListFile("present", possible, sysfs_root);
}

std::string KernelRelease() {
  struct utsname u;
  if (uname(&u) != 0) return "unknown";
  return u.release;
}

}  // namespace migwatch

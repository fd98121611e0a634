// Facts about the running kernel and machine that the probes are configured with.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace migwatch {

/// CPU to NUMA node, from /sys/devices/system/node/node*/cpulist.
struct CpuTopology {
  unsigned nr_nodes = 1;
  std::vector<uint16_t> node_of_cpu;  ///< indexed by CPU; 0 where unknown
};

/// Reads the topology under `sysfs_root` (normally "/sys"). A machine
/// without NUMA nodes in sysfs is one node.
CpuTopology ReadCpuTopology(const std::string& sysfs_root = "/sys");

/// Parses a kernel CPU list such as "0-3,8,10-11". Returns nullopt on
/// malformed input.
std::optional<std::vector<unsigned>> ParseCpuList(std::string_view list);

/// Which of `possible` CPUs are online, from
/// <sysfs_root>/devices/system/cpu/online; all of them if it cannot be read.
std::vector<bool> ReadOnlineCpus(size_t possible, const std::string& sysfs_root = "/sys");

/// Which of `possible` CPUs are present (could come online), from
/// <sysfs_root>/devices/system/cpu/present; all of them if it cannot be read.
/// Firmware often reports many more possible CPUs than the machine has.
std::vector<bool> ReadPresentCpus(size_t possible, const std::string& sysfs_root = "/sys");

/// "6.18.44-..." from uname(2).
std::string KernelRelease();

}  // namespace migwatch

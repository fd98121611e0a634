#include "migwatch/kernel/proc/kernel_thread.h"

namespace migwatch {

std::string KernelThreadLabel(std::string_view comm) {
  return std::string(comm.substr(0, comm.find('/')));
}

bool IsStopperThreadName(std::string_view comm) {
  constexpr std::string_view kPrefix = "migration/";
  if (!comm.starts_with(kPrefix)) return false;
  const std::string_view cpu = comm.substr(kPrefix.size());
  return !cpu.empty() && cpu.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace migwatch

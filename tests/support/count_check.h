// migwatch's count of a process against the kernel's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace migwatch::testing {

/// migwatch's count of a process against the kernel's.
struct CountCheck {
  double migwatch = 0;  ///< migwatch_process_migrations_total{process=name}, all reasons
  uint64_t kernel = 0;  ///< se.nr_migrations summed over the process's threads
  double missed = 0;    ///< migwatch_bpf_program_misses_total of the migration program
  bool exact = false;   ///< equal, or short by no more than the misses; read while the kernel's count stood still
};
/// Compares the two for the live process `pid` named `name` (its comm), with
/// a scrape of the daemon on `port` between two readings of the kernel's
/// count; retries while the process still migrates.
CountCheck CompareProcessCount(int port, pid_t pid, const std::string& name, int attempts = 20);

}  // namespace migwatch::testing

// Shared by the tests that run the real BPF programs on the running kernel.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace migwatch::testing {

/// These tests need root (CAP_BPF, CAP_PERFMON). Without it they fail and
/// say why, unless MIGWATCH_ALLOW_SKIP=1 explicitly allows skipping.
#define MIGWATCH_REQUIRE_BPF()                                                                      \
  do {                                                                                              \
    if (geteuid() != 0) {                                                                           \
      const char* allow = std::getenv("MIGWATCH_ALLOW_SKIP");                                       \
      if (allow && std::string(allow) == "1") GTEST_SKIP() << "needs root to load BPF programs";    \
      FAIL() << "needs root to load BPF programs (set MIGWATCH_ALLOW_SKIP=1 to skip explicitly)";   \
    }                                                                                               \
  } while (0)

/// pid of the migration/<cpu> stopper thread, from /proc.
std::optional<pid_t> StopperPid(int cpu);

/// Runtime in ns of a task from /proc/<pid>/schedstat.
std::optional<uint64_t> SchedstatRuntimeNs(pid_t pid);

/// Sum of se.nr_migrations over the live threads of process `pid`: the
/// kernel's own count of the process's migrations, as long as none of its
/// threads has exited.
std::optional<uint64_t> LiveThreadMigrations(pid_t pid);

}  // namespace migwatch::testing

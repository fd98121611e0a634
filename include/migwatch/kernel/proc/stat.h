// /proc/<pid>/stat and /proc/<pid>/task/<tid>/stat.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace migwatch {

/// task_struct.flags bit of kernel threads (include/linux/sched.h).
inline constexpr std::uint32_t kPfKthread = 0x00200000;

/// The fields of a stat file that migwatch uses. Times are in clock ticks
/// (sysconf(_SC_CLK_TCK)); starttime counts from boot.
struct ProcStat {
  pid_t pid = 0;                      ///< field 1
  std::string comm;                   ///< field 2, without the parentheses
  char state = '?';                   ///< field 3: R, S, D, Z, T, t, X, I, ...
  pid_t ppid = 0;                     ///< field 4
  std::uint32_t flags = 0;            ///< field 9: PF_* bits
  std::uint64_t utime_ticks = 0;      ///< field 14
  std::uint64_t stime_ticks = 0;      ///< field 15
  std::uint64_t num_threads = 0;      ///< field 20
  std::uint64_t starttime_ticks = 0;  ///< field 22
  std::uint64_t rss_pages = 0;        ///< field 24
  std::uint32_t processor = 0;        ///< field 39: CPU the task last ran on

  /// True for kernel threads (PF_KTHREAD), whatever their comm says.
  bool IsKernelThread() const { return (flags & kPfKthread) != 0; }

  friend bool operator==(const ProcStat&, const ProcStat&) = default;
};

/// Parses one stat line. The comm is whatever lies between the first '(' and
/// the LAST ')', so a comm containing spaces, parentheses or ") (" parses
/// correctly. Requires every field up to `processor` (field 39); returns
/// std::nullopt when one is missing, is not a number, or does not fit its type.
/// Pure; thread-safe.
std::optional<ProcStat> ParseStat(std::string_view contents);

/// Reads and parses /proc/<pid>/stat. Thread-safe.
std::optional<ProcStat> ReadProcessStat(pid_t pid);

/// Reads and parses /proc/<pid>/task/<tid>/stat. Thread-safe.
std::optional<ProcStat> ReadTaskStat(pid_t pid, pid_t tid);

/// Reads /proc/<pid>/task/<tid>/comm without its trailing newline: the thread
/// name as pthread_setname_np / prctl(PR_SET_NAME) set it (at most 15 bytes).
/// Thread-safe.
std::optional<std::string> ReadTaskComm(pid_t pid, pid_t tid);

}  // namespace migwatch

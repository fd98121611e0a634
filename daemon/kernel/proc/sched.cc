#include "migwatch/kernel/proc/sched.h"

#include <filesystem>
#include <limits>
#include <string>

#include "migwatch/kernel/proc/read_file.h"
#include "migwatch/kernel/proc/parse_util.h"

namespace migwatch {
namespace {

using parse_util::ForEachLine;
using parse_util::ParseU64;
using parse_util::Trim;

constexpr std::uint64_t kNsPerMs = 1'000'000;
constexpr std::size_t kSchedDecimals = 6;  // the kernel prints "%Ld.%06ld"

// The kernel ends the header with a row of 67 dashes. The header holds the
// task's comm, at most 15 bytes (TASK_COMM_LEN - 1) that the task chooses, and
// that may contain newlines and dashes: a row of 16 or more dashes cannot come
// from it.
constexpr std::size_t kMinSeparatorDashes = 16;

bool IsSeparatorLine(std::string_view line) {
  return line.size() >= kMinSeparatorDashes &&
         line.find_first_not_of('-') == std::string_view::npos;
}

}  // namespace

std::optional<std::uint64_t> ParseSchedMillisecondsToNs(std::string_view value) {
  const std::size_t dot = value.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const std::string_view decimals = value.substr(dot + 1);
  if (decimals.size() != kSchedDecimals) return std::nullopt;
  const auto whole_ms = ParseU64(value.substr(0, dot));
  const auto fraction_ns = ParseU64(decimals);
  if (!whole_ms || !fraction_ns) return std::nullopt;
  if (*whole_ms > (std::numeric_limits<std::uint64_t>::max() - *fraction_ns) / kNsPerMs) {
    return std::nullopt;
  }
  return *whole_ms * kNsPerMs + *fraction_ns;
}

std::optional<TaskSched> ParseSched(std::string_view contents) {
  std::optional<std::uint64_t> nr_migrations;
  std::optional<std::uint64_t> sum_exec_runtime_ns;
  bool in_body = false;
  bool malformed = false;

  ForEachLine(contents, [&](std::string_view line) {
    // Skip the header, "<comm> (<pid>, #threads: <n>)", whose comm could
    // otherwise forge a "key: value" line.
    if (!in_body) {
      in_body = IsSeparatorLine(line);
      return true;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return true;
    const std::string_view key = Trim(line.substr(0, colon));
    const std::string_view value = Trim(line.substr(colon + 1));
    if (key == "se.nr_migrations" && !nr_migrations) {
      nr_migrations = ParseU64(value);
      malformed = !nr_migrations;
    } else if (key == "se.sum_exec_runtime" && !sum_exec_runtime_ns) {
      sum_exec_runtime_ns = ParseSchedMillisecondsToNs(value);
      malformed = !sum_exec_runtime_ns;
    }
    return !malformed;
  });

  if (malformed || !nr_migrations || !sum_exec_runtime_ns) return std::nullopt;
  return TaskSched{.nr_migrations = *nr_migrations, .sum_exec_runtime_ns = *sum_exec_runtime_ns};
}

std::optional<TaskSched> ReadTaskSched(pid_t pid, pid_t tid) {
  const auto contents = ReadProcFile(parse_util::TaskPath(pid, tid, "sched"));
  if (!contents) return std::nullopt;
  return ParseSched(*contents);
}

std::optional<std::uint64_t> ReadNrMigrations(pid_t pid, pid_t tid) {
  const auto sched = ReadTaskSched(pid, tid);
  if (!sched) return std::nullopt;
  return sched->nr_migrations;
}

std::optional<std::uint64_t> ReadLiveThreadMigrations(pid_t pid) {
  std::uint64_t sum = 0;
  bool any = false;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    if (auto n = ReadNrMigrations(pid, std::stoi(task.path().filename()))) {
      sum += *n;
      any = true;
    }
  }
  if (!any) return std::nullopt;
  return sum;
}

}  // namespace migwatch

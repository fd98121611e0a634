#include "migwatch/kernel/proc/schedstat.h"

#include <array>

#include "migwatch/kernel/proc/read_file.h"
#include "migwatch/kernel/proc/parse_util.h"

namespace migwatch {

std::optional<SchedStat> ParseSchedStat(std::string_view contents) {
  std::array<std::uint64_t, 3> numbers{};
  std::size_t count = 0;
  std::string_view rest = contents;
  for (;;) {
    while (!rest.empty() && parse_util::IsSpace(rest.front())) rest.remove_prefix(1);
    if (rest.empty()) break;
    if (count == numbers.size()) return std::nullopt;
    std::size_t length = 0;
    while (length < rest.size() && !parse_util::IsSpace(rest[length])) ++length;
    const auto number = parse_util::ParseU64(rest.substr(0, length));
    if (!number) return std::nullopt;
    numbers[count++] = *number;
    rest.remove_prefix(length);
  }
  if (count != numbers.size()) return std::nullopt;
  return SchedStat{.run_ns = numbers[0], .run_queue_wait_ns = numbers[1], .timeslices = numbers[2]};
}

std::optional<SchedStat> ReadProcessSchedStat(pid_t pid) {
  return ReadProcFileAs(parse_util::ProcessPath(pid, "schedstat"), ParseSchedStat);
}

std::optional<SchedStat> ReadTaskSchedStat(pid_t pid, pid_t tid) {
  return ReadProcFileAs(parse_util::TaskPath(pid, tid, "schedstat"), ParseSchedStat);
}

}  // namespace migwatch

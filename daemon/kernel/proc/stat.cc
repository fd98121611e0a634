#include "migwatch/kernel/proc/stat.h"

#include <array>

#include "migwatch/kernel/proc/read_file.h"
#include "migwatch/kernel/proc/parse_util.h"

namespace migwatch {
namespace {

using parse_util::ParseUnsigned;

// Fields after the comm, numbered as in proc(5): index 0 is field 3 (state).
constexpr std::size_t FieldIndex(std::size_t proc5_field_number) { return proc5_field_number - 3; }
constexpr std::size_t kLastFieldUsed = 39;  // processor
constexpr std::size_t kFieldsNeeded = FieldIndex(kLastFieldUsed) + 1;

std::optional<ProcStat> ParseStatFields(pid_t pid, std::string_view comm,
                                        const std::array<std::string_view, kFieldsNeeded>& fields) {
  const std::string_view state = fields[FieldIndex(3)];
  if (state.size() != 1) return std::nullopt;

  const auto ppid = parse_util::ParsePid(fields[FieldIndex(4)]);
  const auto flags = ParseUnsigned<std::uint32_t>(fields[FieldIndex(9)]);
  const auto utime = ParseUnsigned<std::uint64_t>(fields[FieldIndex(14)]);
  const auto stime = ParseUnsigned<std::uint64_t>(fields[FieldIndex(15)]);
  const auto num_threads = ParseUnsigned<std::uint64_t>(fields[FieldIndex(20)]);
  const auto starttime = ParseUnsigned<std::uint64_t>(fields[FieldIndex(22)]);
  const auto rss = ParseUnsigned<std::uint64_t>(fields[FieldIndex(24)]);
  const auto processor = ParseUnsigned<std::uint32_t>(fields[FieldIndex(39)]);
  if (!ppid || !flags || !utime || !stime || !num_threads || !starttime || !rss || !processor) {
    return std::nullopt;
  }
  return ProcStat{
      .pid = pid,
      .comm = std::string(comm),
      .state = state.front(),
      .ppid = *ppid,
      .flags = *flags,
      .utime_ticks = *utime,
      .stime_ticks = *stime,
      .num_threads = *num_threads,
      .starttime_ticks = *starttime,
      .rss_pages = *rss,
      .processor = *processor,
  };
}

}  // namespace

std::optional<ProcStat> ParseStat(std::string_view contents) {
  // "<pid> (<comm>) <state> <ppid> ...": the comm is chosen by the task and
  // may hold anything, including ") (", but the fields after it never hold a
  // ')', so the last ')' closes the comm.
  const std::size_t open = contents.find(" (");
  const std::size_t close = contents.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open + 2) {
    return std::nullopt;
  }
  const auto pid = parse_util::ParsePid(contents.substr(0, open));
  if (!pid) return std::nullopt;
  const std::string_view comm = contents.substr(open + 2, close - (open + 2));

  std::string_view rest = contents.substr(close + 1);
  if (!rest.empty() && rest.back() == '\n') rest.remove_suffix(1);
  if (rest.empty() || rest.front() != ' ') return std::nullopt;
  rest.remove_prefix(1);

  // The kernel separates fields with exactly one space; an empty field means
  // the line is not what the kernel wrote.
  std::array<std::string_view, kFieldsNeeded> fields;
  for (std::string_view& field : fields) {
    const std::size_t space = rest.find(' ');
    field = rest.substr(0, space);
    if (field.empty()) return std::nullopt;
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  }
  return ParseStatFields(*pid, comm, fields);
}

std::optional<ProcStat> ReadProcessStat(pid_t pid) {
  return ReadProcFileAs(parse_util::ProcessPath(pid, "stat"), ParseStat);
}

std::optional<ProcStat> ReadTaskStat(pid_t pid, pid_t tid) {
  return ReadProcFileAs(parse_util::TaskPath(pid, tid, "stat"), ParseStat);
}

std::optional<std::string> ReadTaskComm(pid_t pid, pid_t tid) {
  auto contents = ReadProcFile(parse_util::TaskPath(pid, tid, "comm"));
  if (!contents) return std::nullopt;
  // The kernel appends exactly one newline; strip only that one, since a comm
  // may itself end in whitespace.
  if (!contents->empty() && contents->back() == '\n') contents->pop_back();
  return contents;
}

}  // namespace migwatch

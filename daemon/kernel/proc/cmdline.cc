#include "migwatch/kernel/proc/cmdline.h"

#include "migwatch/kernel/proc/read_file.h"
#include "migwatch/kernel/proc/parse_util.h"

namespace migwatch {

std::vector<std::string> ParseCmdline(std::string_view contents) {
  std::vector<std::string> argv;
  while (!contents.empty()) {
    const std::size_t nul = contents.find('\0');
    argv.emplace_back(contents.substr(0, nul));
    if (nul == std::string_view::npos) break;
    contents.remove_prefix(nul + 1);
  }
  return argv;
}

std::optional<std::vector<std::string>> ReadCmdline(pid_t pid) {
  const auto contents = ReadProcFile(parse_util::ProcessPath(pid, "cmdline"));
  if (!contents) return std::nullopt;
  return ParseCmdline(*contents);
}

}  // namespace migwatch

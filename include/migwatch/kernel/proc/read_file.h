// Reading whole files from /proc.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace migwatch {

/// Largest file ReadProcFile returns. The files migwatch reads are a few
/// kilobytes, except /proc/<pid>/cmdline, which any user can make as large as
/// the stack limit allows: the cap keeps a hostile command line from costing
/// the daemon memory.
inline constexpr std::size_t kMaxProcFileBytes = 4 * 1024 * 1024;

/// Reads the whole file at `path`. /proc files report size 0, so this reads
/// until end of file instead of trusting stat(). Returns std::nullopt when the
/// file cannot be opened or read (for example because the task has exited) or
/// is larger than kMaxProcFileBytes. Thread-safe.
std::optional<std::string> ReadProcFile(const std::string& path);

/// ReadProcFile, then `parse` (which returns a std::optional) on what was
/// read: nullopt if either fails.
template <typename Parse>
auto ReadProcFileAs(const std::string& path, Parse parse) -> decltype(parse(std::string())) {
  const auto contents = ReadProcFile(path);
  if (!contents) return std::nullopt;
  return parse(*contents);
}

}  // namespace migwatch

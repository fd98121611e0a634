// Small parsing helpers shared by the proc parsers. Private to migwatch_proc.
#pragma once

#include <sys/types.h>

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace migwatch::parse_util {

/// An unsigned decimal number spanning all of `text`: no sign, no spaces.
inline std::optional<std::uint64_t> ParseU64(std::string_view text) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  // from_chars accepts a leading '-' for no unsigned type, but check the first
  // character anyway so that an empty string is rejected without a call.
  if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

/// ParseU64 restricted to the range of T.
template <typename T>
std::optional<T> ParseUnsigned(std::string_view text) {
  const auto value = ParseU64(text);
  if (!value || *value > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
    return std::nullopt;
  }
  return static_cast<T>(*value);
}

/// A process or thread id: a non-negative decimal that fits pid_t.
inline std::optional<pid_t> ParsePid(std::string_view text) { return ParseUnsigned<pid_t>(text); }

inline bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

inline std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

/// Calls `visit(line)` for every '\n'-separated line, without the newline.
/// Stops early when `visit` returns false.
template <typename Visitor>
void ForEachLine(std::string_view text, Visitor&& visit) {
  while (!text.empty()) {
    const std::size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    if (!visit(line)) return;
    if (newline == std::string_view::npos) return;
    text.remove_prefix(newline + 1);
  }
}

/// "/proc/<pid>/<file>"
inline std::string ProcessPath(pid_t pid, std::string_view file) {
  return "/proc/" + std::to_string(pid) + "/" + std::string(file);
}

/// "/proc/<pid>/task/<tid>/<file>"
inline std::string TaskPath(pid_t pid, pid_t tid, std::string_view file) {
  return "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/" + std::string(file);
}

}  // namespace migwatch::parse_util

#include "migwatch/kernel/proc/status.h"

#include "migwatch/kernel/proc/read_file.h"
#include "migwatch/kernel/proc/parse_util.h"

namespace migwatch {
namespace {

constexpr std::size_t kMaxCapabilityHexDigits = 16;

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

std::optional<std::string> ParseStatusField(std::string_view contents, std::string_view key) {
  std::optional<std::string> found;
  parse_util::ForEachLine(contents, [&](std::string_view line) {
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || line.substr(0, colon) != key) return true;
    found = std::string(parse_util::Trim(line.substr(colon + 1)));
    return false;
  });
  return found;
}

std::optional<std::uint64_t> ParseCapabilityMask(std::string_view hex) {
  if (hex.empty() || hex.size() > kMaxCapabilityHexDigits) return std::nullopt;
  std::uint64_t mask = 0;
  for (const char c : hex) {
    if (!IsHexDigit(c)) return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    mask = (mask << 4) | digit;
  }
  return mask;
}

std::optional<std::string> ReadStatusField(pid_t pid, std::string_view key) {
  const auto contents = ReadProcFile(parse_util::ProcessPath(pid, "status"));
  if (!contents) return std::nullopt;
  return ParseStatusField(*contents, key);
}

}  // namespace migwatch

// /proc/<pid>/status: "Key:\tvalue" lines.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace migwatch {

/// Value of the first line whose key (the text before its first ':') equals
/// `key`, with surrounding whitespace removed: "Uid:\t0\t0\t0\t0" gives
/// "0\t0\t0\t0" for "Uid", "Groups:\t" gives "". std::nullopt when no line has
/// that key. Pure; thread-safe.
std::optional<std::string> ParseStatusField(std::string_view contents, std::string_view key);

/// Parses a capability set as status prints it (CapEff, CapPrm, CapInh, CapBnd,
/// CapAmb): 1 to 16 hexadecimal digits, no prefix, either case. Bit N is
/// capability N (CAP_SYS_ADMIN = 21). Pure; thread-safe.
std::optional<std::uint64_t> ParseCapabilityMask(std::string_view hex);

/// Reads /proc/<pid>/status and returns the value of `key` as ParseStatusField
/// does. Thread-safe.
std::optional<std::string> ReadStatusField(pid_t pid, std::string_view key);

}  // namespace migwatch

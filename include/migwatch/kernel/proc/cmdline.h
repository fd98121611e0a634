// /proc/<pid>/cmdline: the argument vector, NUL-separated.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace migwatch {

/// Splits cmdline contents into arguments. Every NUL ends an argument; text
/// after the last NUL is one more argument (a process that rewrote its argv
/// may leave no final NUL). Empty contents, as for kernel threads and zombies,
/// give an empty vector; "a\0\0" gives {"a", ""}. Pure; thread-safe.
std::vector<std::string> ParseCmdline(std::string_view contents);

/// Reads and splits /proc/<pid>/cmdline; std::nullopt if it cannot be read.
/// Thread-safe.
std::optional<std::vector<std::string>> ReadCmdline(pid_t pid);

}  // namespace migwatch

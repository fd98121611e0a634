// Drives a child process through its stdin and key=value lines on stdout.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace migwatch::testing {

class Subprocess {
 public:
  /// Starts `path` with `argv` (argv[0] included, so a child can be given
  /// any name to show in /proc/<pid>/cmdline).
  Subprocess(const std::string& path, const std::vector<std::string>& argv);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  /// Reads stdout lines until one is `key=value`; returns the value, or
  /// nullopt at end of output or after `timeout_s`.
  std::optional<std::string> ValueOf(const std::string& key, double timeout_s = 60);
  void Send(const std::string& line);
  /// Closes stdin and waits; returns the exit status (or -1).
  int Wait();

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  std::string buffer_;
};

}  // namespace migwatch::testing

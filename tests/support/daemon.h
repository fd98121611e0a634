// The migwatch daemon started for one test.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "support/process.h"

namespace migwatch::testing {

/// A migwatch daemon for one test, a Process of its own. Readiness is its
/// own sd_notify READY=1 on a socket of the test's (NOTIFY_SOCKET), the port
/// the one it logs.
class Daemon {
 public:
  /// Starts `argv`: the migwatch binary and its flags, possibly behind
  /// wrappers (setpriv, unshare) that end by exec'ing it in the same process.
  explicit Daemon(const std::vector<std::string>& argv);
  /// SIGKILL if still running.
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Waits for READY=1 and the "listening on" line logged before it. False
  /// if the process exited or `timeout_s` passed.
  bool WaitReady(double timeout_s = 60);
  /// The port of the first "listening on HOST:PORT" line of the log; -1 if
  /// there is none within 5 s.
  int port() const;
  pid_t pid() const { return process_.pid(); }
  /// Everything the daemon wrote to stderr (and stdout) so far.
  std::string Log() const { return process_.Output(); }
  /// Seconds from the last Stop() signal until a line containing `text`
  /// was read from the daemon; nullopt if none was.
  std::optional<double> SecondsFromStopTo(const std::string& text) const;
  /// Sends `signal` and waits up to `timeout_s` for the process to end, then
  /// kills it, adding each thread's kernel stack to the log. Returns how it
  /// ended (output: the whole log) and, in `seconds`, the time from the
  /// signal to the end.
  Finished Stop(int signal, double timeout_s = 10);

 private:
  struct NotifySocket {
    NotifySocket();
    ~NotifySocket();
    int fd = -1;
    std::string name;  ///< abstract: NOTIFY_SOCKET is "@" and this
  };
  NotifySocket notify_;  // before process_: its name is in the daemon's environment
  Process process_;
  Clock::time_point stop_signal_;
};

}  // namespace migwatch::testing

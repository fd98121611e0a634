// A real terminal for `migwatch top`: a tmux session of the test's own.
#pragma once

#include <string>
#include <vector>

#include "support/clock.h"
#include "support/process.h"

namespace migwatch::testing {

/// A tmux server of its own (private socket) with one detached session of a
/// fixed size, running one shell command. The server is killed at the end.
class Tmux {
 public:
  /// Fails the current test if tmux is missing or the session does not start.
  Tmux(const std::string& shell_command, int width, int height);
  ~Tmux();
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  /// The visible pane, one string per line.
  std::vector<std::string> Capture() const;
  /// Captures until `pred` holds for the pane; false after `timeout_s`.
  template <typename Pred>
  bool WaitForPane(Pred pred, double timeout_s, std::vector<std::string>* pane = nullptr) const;
  void SendKeys(const std::string& keys) const;
  void Resize(int width, int height) const;
  /// Whether the session (the command in it) still runs.
  bool Running() const;

 private:
  Finished Run(std::vector<std::string> args) const;
  std::string socket_;
};

template <typename Pred>
bool Tmux::WaitForPane(Pred pred, double timeout_s, std::vector<std::string>* pane) const {
  for (double waited = 0;; waited += 0.1) {
    std::vector<std::string> now = Capture();
    const bool ok = pred(now);
    if (pane) *pane = std::move(now);
    if (ok) return true;
    if (waited >= timeout_s) return false;
    Pause(0.1);
  }
}

}  // namespace migwatch::testing

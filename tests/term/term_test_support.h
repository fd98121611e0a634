// Running the migwatch binary as an operator does: in the background with
// its output kept, to completion, or in a real terminal (tmux).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace migwatch::testing {

/// A command running in the background, its stdout and stderr going to
/// files so that what it printed so far can be read at any time. argv[0]
/// is the path of the program.
class Background {
 public:
  explicit Background(const std::vector<std::string>& argv);
  /// Kills the command (SIGKILL) if it still runs.
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  pid_t pid() const { return pid_; }
  std::string Stdout() const;
  std::string Stderr() const;
  /// Waits until stdout contains `text`. False after `timeout_s`, or as soon
  /// as the command has ended without printing it.
  bool WaitForOutput(const std::string& text, double timeout_s);
  void Signal(int signal);
  /// Waits for the command to end and returns its exit status; -1 if a
  /// signal ended it or if it still ran after `timeout_s` (then it is killed).
  int Wait(double timeout_s);

 private:
  bool Ended();  // reaps the command if it has ended
  pid_t pid_ = -1;
  int status_ = -1;
  std::string dir_, stdout_path_, stderr_path_;
};

struct Finished {
  int status;  ///< exit status, -1 for a signal or a timeout
  std::string out, err;
};

/// Runs a command to completion (killed after `timeout_s`).
Finished RunToEnd(const std::vector<std::string>& argv, double timeout_s);

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

/// `text` split at newlines.
std::vector<std::string> Lines(const std::string& text);

/// A name no other test run uses, for comms, processes and VMs.
std::string UniqueName(const std::string& prefix);

/// Sum of se.nr_migrations over every thread of a process.
uint64_t ProcessNrMigrations(pid_t pid);

/// Sleeps `seconds`.
void Pause(double seconds);

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

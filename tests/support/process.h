// Running programs from a test: to their end (RunToEnd), in the background
// with their output kept (Process), or driven line by line (Subprocess).
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/clock.h"

namespace migwatch::testing {

inline constexpr double kForever = std::numeric_limits<double>::infinity();

/// How a command ended.
struct Finished {
  bool exited = false;  ///< false: killed by a signal, or still running at the timeout (then killed)
  int exit_code = -1;   ///< the exit status when exited, else -1
  int signal = 0;       ///< the signal that ended it, if one did
  std::string out;      ///< stdout
  std::string err;      ///< stderr
  /// stdout and stderr as they were read (interleaved), and for a command
  /// killed at its timeout the kernel stack of each of its threads.
  std::string output;
  double seconds = 0;  ///< from the start (from the signal, for Process::Stop) to the end
};

/// A command running in the background. Its stdout and stderr are read as
/// they come (a thread of its own), so that what it printed so far can be
/// read at any time and the command never blocks on a full pipe.
class Process {
 public:
  struct Options {
    /// The file to execute; empty: argv[0], looked up in PATH.
    std::string path;
    /// "NAME=value" entries that replace or add to the test's environment.
    std::vector<std::string> env;
    /// Stdin a pipe that Send() writes to; /dev/null otherwise.
    bool stdin_pipe = false;
    /// Stderr left to the test's own (shown with the test's output) rather
    /// than kept.
    bool stderr_to_test = false;
    /// Forked while the calling thread is pinned to the CPU it runs on, so
    /// the command starts there alone (the thread's CPUs are restored after).
    bool start_on_this_cpu = false;
  };

  /// Starts `argv`: argv[0] is the program unless options.path is set.
  explicit Process(const std::vector<std::string>& argv) : Process(argv, Options{}) {}
  Process(const std::vector<std::string>& argv, const Options& options);
  /// Kills the command (SIGKILL) if it still runs.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// The command's pid; -1 if it could not be started.
  pid_t pid() const { return pid_; }
  std::string Stdout() const;
  std::string Stderr() const;
  /// Stdout and stderr as they were read, interleaved.
  std::string Output() const;
  /// When the reader had first read the output up to the end of `text`'s
  /// first occurrence in Output(); nullopt if it is not there.
  std::optional<Clock::time_point> WhenPrinted(const std::string& text) const;

  /// Waits until stdout contains `text`. False after `timeout_s`, or as soon
  /// as stdout has ended without it.
  bool WaitForOutput(const std::string& text, double timeout_s);
  /// The next stdout line not returned yet; nullopt at the end of stdout or
  /// after `timeout_s`.
  std::optional<std::string> NextLine(double timeout_s);
  /// Writes `line` and a newline to stdin (Options::stdin_pipe).
  void Send(const std::string& line);
  void Signal(int signal);
  /// Whether the command still runs; reaps it if it has ended.
  bool Running();

  /// Closes stdin and waits up to `timeout_s` for the command to end, then
  /// kills it (adding each thread's kernel stack to the output).
  Finished Finish(double timeout_s = kForever);
  /// Finish(timeout_s).exit_code: the exit status, -1 if a signal ended the
  /// command or if it still ran after `timeout_s`.
  int Wait(double timeout_s = kForever) { return Finish(timeout_s).exit_code; }
  /// Sends `signal`, then Finish(timeout_s); `seconds` counts from the signal.
  Finished Stop(int signal, double timeout_s = 10);

 private:
  bool Reap(bool block);
  void Read(int out_fd, int err_fd);
  Finished Result(Clock::time_point since) const;

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int wake_fd_ = -1;  ///< tells the reader that the command was reaped
  Clock::time_point started_, ended_, signalled_ = Clock::time_point::max();
  std::optional<Finished> ended_as_;  ///< once reaped (no output in it)
  std::thread reader_;
  mutable std::mutex mutex_;
  std::condition_variable more_;
  std::string out_, err_, output_;
  bool stdout_ended_ = false;
  std::vector<std::pair<Clock::time_point, size_t>> arrivals_;  ///< when output_ reached a size
  size_t lines_returned_ = 0;  ///< offset in out_ of the first line NextLine has not returned
};

/// Runs `argv` (argv[0] is the program path) to its end, killing it after
/// `timeout_s`.
Finished RunToEnd(const std::vector<std::string>& argv, double timeout_s = 30);

/// A child driven through its stdin, answering with key=value lines on
/// stdout (mw_workload's protocol); its stderr goes to the test's.
class Subprocess : public Process {
 public:
  /// Starts `path` with `argv` (argv[0] included, so a child can be given
  /// any name to show in /proc/<pid>/cmdline).
  Subprocess(const std::string& path, const std::vector<std::string>& argv);

  /// Reads stdout lines until one is `key=value`; returns the value, or
  /// nullopt at end of output or after `timeout_s`.
  std::optional<std::string> ValueOf(const std::string& key, double timeout_s = 60);
};

}  // namespace migwatch::testing

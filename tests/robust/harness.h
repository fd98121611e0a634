// What the robustness tests share: the real migwatch binary started as a
// daemon, scrapes and their parsing, and the kernel's view of BPF programs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace migwatch::testing {

/// The binaries under test, from the build.
inline const std::string kMigwatch = MW_MIGWATCH_PATH;
inline const std::string kWorkload = MW_WORKLOAD_PATH;

/// mw_workload under another file name, so that a process started from it
/// has that comm from its exec on (a rename after the exec would leave the
/// migrations made before it under the old name). Anyone may run it.
class NamedWorkload {
 public:
  /// `name`: at most 15 characters (the kernel's comm).
  explicit NamedWorkload(const std::string& name);
  ~NamedWorkload();
  NamedWorkload(const NamedWorkload&) = delete;
  NamedWorkload& operator=(const NamedWorkload&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string directory_, path_;
};

/// How a command that ran to its end ended.
struct Finished {
  bool exited = false;  ///< false: killed by a signal, or still running at the timeout (then killed)
  int exit_code = -1;   ///< when exited
  int signal = 0;       ///< the signal that ended it, if one did
  std::string output;   ///< stdout and stderr, interleaved
  double seconds = 0;
};

/// Runs `argv` (argv[0] is the program path) with stdout and stderr
/// captured, killing it after `timeout_s`.
Finished RunToEnd(const std::vector<std::string>& argv, double timeout_s = 30);

/// A migwatch daemon for one test. Readiness is its own sd_notify READY=1
/// on a socket of the test's (NOTIFY_SOCKET), the port the one it logs.
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
  pid_t pid() const { return pid_; }
  /// Everything the daemon wrote to stderr (and stdout) so far.
  std::string Log() const;
  /// Seconds from the last Stop() signal until a line containing `text`
  /// was read from the daemon; nullopt if none was.
  std::optional<double> SecondsFromStopTo(const std::string& text) const;
  /// Sends `signal` and waits up to `timeout_s` for the process to end, then
  /// kills it, adding each thread's kernel stack to the log. Returns how it
  /// ended (output: the whole log) and, in `seconds`, the time from the
  /// signal to the end.
  Finished Stop(int signal, double timeout_s = 10);

 private:
  void ReadOutput();
  pid_t pid_ = -1;
  int output_fd_ = -1;
  int notify_fd_ = -1;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::string log_;
  std::vector<std::pair<std::chrono::steady_clock::time_point, size_t>> arrivals_;  ///< when log_ reached a size
  std::chrono::steady_clock::time_point stop_signal_;
  std::optional<Finished> finished_;
};

/// One HTTP GET.
struct Response {
  long status = 0;  ///< 0 if the request failed
  std::string body;
  std::string error;  ///< the transfer error, if any
  double seconds = 0;
};
Response HttpGet(int port, const std::string& path = "/metrics", double timeout_s = 30);

/// A scrape in the Prometheus text format, parsed.
struct Exposition {
  /// Series (the sample line up to its value: name and labels as printed)
  /// to value.
  std::map<std::string, double> samples;
  /// Family names in the order of their "# TYPE" lines.
  std::vector<std::string> families;
  std::map<std::string, std::string> types;  ///< family -> counter, gauge, ...
};
/// Parses `body`; nullopt and `error` when a line is not the text format, a
/// sample belongs to no declared family, a series repeats, or the body does
/// not end with a newline.
std::optional<Exposition> ParseExposition(const std::string& body, std::string* error);

/// Sum of the samples of `family` whose label set contains every
/// `name="value"` pair of `labels` (given as `name="value"` strings).
double Sum(const Exposition& e, const std::string& family, const std::vector<std::string>& labels = {});
/// Distinct values of label `label` among the samples of `family`.
std::set<std::string> LabelValues(const Exposition& e, const std::string& family, const std::string& label);

/// A scrape of /metrics that must succeed and parse (EXPECTs otherwise).
Exposition Scrape(int port);

/// The series of migwatch_probe_attached: "probe mode value" per probe, in
/// one string, so that two daemons' probes compare at a glance.
std::string ProbeModes(const Exposition& e);

/// Resident set size of a process in bytes (0 if it is gone).
uint64_t RssBytes(pid_t pid);
/// Sum of se.nr_migrations over every thread of `pid`.
std::optional<uint64_t> ProcessNrMigrations(pid_t pid);

/// migwatch's count of a process against the kernel's.
struct CountCheck {
  double migwatch = 0;  ///< migwatch_process_migrations_total{process=name}, all reasons
  uint64_t kernel = 0;  ///< se.nr_migrations summed over the process's threads
  double missed = 0;    ///< migwatch_bpf_program_misses_total of the migration program
  bool exact = false;   ///< equal, or short by no more than the misses; read while the kernel's count stood still
};
/// Compares the two for the live process `pid` named `name` (its comm), with
/// a scrape between two readings of the kernel's count; retries while the
/// process still migrates.
CountCheck CompareProcessCount(int port, pid_t pid, const std::string& name, int attempts = 20);

/// Entries in the BPF map called `map_name` that process `holder` has open
/// (the daemon's own maps); nullopt if it has none by that name.
std::optional<size_t> MapEntries(pid_t holder, const std::string& map_name);

/// A BPF program or link of migwatch's that the kernel still has.
struct BpfObject {
  std::string kind;  ///< "program" or "link"
  uint32_t id = 0;
  std::string name;  ///< the program's name
  std::set<pid_t> holders;  ///< processes with an fd on it (a link's, for a program)
};
/// Every program of migwatch's BPF object (and every link to one) loaded in
/// the kernel now, with the processes holding it. Needs root (fdinfo of
/// other processes).
std::vector<BpfObject> MigwatchBpfObjects();
/// The objects no live process holds: left behind. Waits up to `grace_s`
/// for ones on their way out (the kernel frees a detached link's program
/// after an RCU grace period). Objects whose id is in `known` (orphans that
/// were there before the test) are not reported.
std::vector<BpfObject> LeftBehind(const std::set<uint32_t>& known = {}, double grace_s = 3);
/// Ids of the objects held by `pid`.
std::set<uint32_t> HeldBy(const std::vector<BpfObject>& objects, pid_t pid);
/// For failure messages.
std::string Describe(const std::vector<BpfObject>& objects);

}  // namespace migwatch::testing

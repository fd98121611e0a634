#include "support/stopper_trace.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/kernel_truth.h"

namespace migwatch::testing {
namespace {

constexpr const char* kTracefs = "/sys/kernel/tracing";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// "prev_pid == A || next_pid == A || ..." over the stoppers.
std::string Filter(const std::map<int, pid_t>& stoppers, const std::vector<std::string>& fields) {
  std::string filter;
  for (const auto& [cpu, pid] : stoppers)
    for (const auto& field : fields) filter += (filter.empty() ? "" : " || ") + field + " == " + std::to_string(pid);
  return filter;
}

}  // namespace

std::unique_ptr<StopperTrace> StopperTrace::Start(const std::vector<int>& cpus, std::string* error) {
  std::map<int, pid_t> stoppers;
  for (int cpu : cpus) {
    auto pid = StopperPid(cpu);
    if (!pid) {
      *error = "no migration/" + std::to_string(cpu) + " in /proc";
      return nullptr;
    }
    stoppers[cpu] = *pid;
  }
  // A fresh machine has no tracefs mounted: mounted here, and unmounted
  // with the trace, so that no later test finds it mounted by this one.
  bool mounted = false;
  if (access((std::string(kTracefs) + "/instances").c_str(), F_OK) != 0) {
    if (mount("nodev", kTracefs, "tracefs", 0, nullptr) != 0) {
      *error = std::string("tracefs is not mounted at ") + kTracefs + " and cannot be: " + std::strerror(errno);
      return nullptr;
    }
    mounted = true;
  }
  const std::string dir = std::string(kTracefs) + "/instances/mwt-stoppers-" + std::to_string(getpid());
  if (mkdir(dir.c_str(), 0700) != 0) {
    *error = "cannot create the ftrace instance " + dir + ": " + std::strerror(errno);
    if (mounted) umount2(kTracefs, MNT_DETACH);
    return nullptr;
  }
  std::unique_ptr<StopperTrace> trace(new StopperTrace(dir, std::move(stoppers), mounted));
  // A storm's runs are a few events each: 8 MiB a CPU holds minutes of them.
  // The marks and the CPUs' events are ordered by one clock for all CPUs.
  if (!trace->Write("buffer_size_kb", "8192") || !trace->Write("trace_clock", "global") ||
      !trace->Write("events/sched/sched_switch/filter", Filter(trace->stoppers_, {"prev_pid", "next_pid"})) ||
      !trace->Write("events/sched/sched_stat_runtime/filter", Filter(trace->stoppers_, {"pid"})) ||
      !trace->Write("events/sched/sched_switch/enable", "1") ||
      !trace->Write("events/sched/sched_stat_runtime/enable", "1") || !trace->Write("tracing_on", "1")) {
    *error = "cannot set up the ftrace instance " + dir;
    return nullptr;
  }
  return trace;
}

StopperTrace::~StopperTrace() {
  Write("tracing_on", "0");
  Write("events/sched/sched_switch/enable", "0");
  Write("events/sched/sched_stat_runtime/enable", "0");
  rmdir(dir_.c_str());
  if (mounted_) umount2(kTracefs, MNT_DETACH);
}

bool StopperTrace::Write(const std::string& file, const std::string& value) {
  std::ofstream out(dir_ + "/" + file);
  out << value << std::flush;
  return static_cast<bool>(out);
}

void StopperTrace::Mark(const std::string& text) { Write("trace_marker", text); }

std::optional<std::vector<StopperRun>> StopperTrace::Runs(const std::string& begin, const std::string& end,
                                                          std::string* error) {
  Write("tracing_on", "0");
  for (const auto& [cpu, pid] : stoppers_) {
    const std::string stats = ReadAll(dir_ + "/per_cpu/cpu" + std::to_string(cpu) + "/stats");
    if (stats.find("\noverrun: 0\n") == std::string::npos || stats.find("commit overrun: 0\n") == std::string::npos ||
        stats.find("dropped events: 0\n") == std::string::npos) {
      *error = "the trace of CPU " + std::to_string(cpu) + " lost events: " + stats;
      return std::nullopt;
    }
  }
  static const std::regex cpu_field(R"(\[(\d+)\])");
  static const std::regex switch_fields(
      R"(sched_switch: .* prev_pid=(\d+) prev_prio=-?\d+ prev_state=(\S+) ==> .* next_pid=(\d+) next_prio=)");
  static const std::regex runtime_fields(R"(sched_stat_runtime: .* pid=(\d+) runtime=(\d+) )");
  std::map<pid_t, int> stopper_cpus;
  for (const auto& [cpu, pid] : stoppers_) stopper_cpus[pid] = cpu;
  // Per CPU: the run under way, seen to begin inside the window.
  std::map<int, std::optional<StopperRun>> running;
  std::vector<StopperRun> runs;
  bool inside = false, began = false, ended = false;
  std::istringstream trace(ReadAll(dir_ + "/trace"));
  for (std::string line; std::getline(trace, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line.find("LOST") != std::string::npos) {
      *error = "the trace lost events: " + line;
      return std::nullopt;
    }
    if (line.find("tracing_mark_write: ") != std::string::npos) {
      const std::string text = line.substr(line.find("tracing_mark_write: ") + 20);
      if (text == begin) inside = began = true;
      if (text == end && began) {
        inside = false;
        ended = true;
        running.clear();
      }
      continue;
    }
    std::smatch m;
    if (std::regex_search(line, m, switch_fields)) {
      std::smatch c;
      if (!std::regex_search(line, c, cpu_field)) continue;
      const int cpu = std::stoi(c[1]);
      const auto stopper = stoppers_.find(cpu);
      if (stopper == stoppers_.end()) continue;
      const pid_t prev = std::stoi(m[1]), next = std::stoi(m[3]);
      const std::string prev_state = m[2];
      if (prev == stopper->second && running[cpu]) runs.push_back(*running[cpu]);
      running[cpu].reset();
      if (next == stopper->second && inside) {
        StopperRun run;
        run.cpu = cpu;
        run.preempted_tid = prev != 0 && prev_state[0] == 'R' ? prev : 0;
        running[cpu] = run;
      }
    } else if (std::regex_search(line, m, runtime_fields)) {
      // Recorded on the CPU that updated the stopper's runtime: another one
      // reading its /proc/PID/schedstat while it runs does too.
      const auto of = stopper_cpus.find(std::stoi(m[1]));
      if (of != stopper_cpus.end() && running[of->second]) running[of->second]->runtime_ns += std::stoull(m[2]);
    }
  }
  if (!began || !ended) {
    *error = "the trace lacks the mark '" + std::string(began ? end : begin) + "'";
    return std::nullopt;
  }
  return runs;
}

}  // namespace migwatch::testing

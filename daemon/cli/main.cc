// migwatch: why migration/N burns CPU. Command-line entry point.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "migwatch/cli/commands.h"
#include "migwatch/cli/process.h"
#include "migwatch/cli/logging.h"
#include "migwatch/export/web/quote.h"

int main(int argc, char** argv) {
  using namespace migwatch;
  CLI::App app{"migwatch: counts every task migration in the kernel, says which path moved the task and who asked, "
               "measures what the migration/N stopper threads cost, and serves it as Prometheus metrics.",
               "migwatch"};
  app.set_version_flag("--version", VersionString());
  app.option_defaults()->always_capture_default();

  CommonOptions common;
  std::string log_level = "info", log_format = "logfmt";
  bool no_fentry = false;
  app.add_option("--log.level", log_level, "Log level: debug, info, warn, error")->capture_default_str();
  app.add_option("--log.format", log_format, "Log format: logfmt or json")->capture_default_str();
  app.add_flag("--no-fentry", no_fentry, "Do not try fentry programs even where the kernel allows them");
  app.add_option("--labels.cap", common.label_cap,
                 "Distinct values per process and requester label; the rest fold into \"other\". The labels follow "
                 "the busiest names: at each scrape, a name with at least twice the recent migrations or stopper "
                 "time of the quietest holder takes its label (README, Metrics)")
      ->check(CLI::Range(size_t{1}, size_t{10000}));
  app.add_option("--labels.vm-cap", common.vm_label_cap, "Distinct values of the vm label; the rest fold into \"other\"")
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  app.add_option("--bpf.max-processes", common.probes.max_processes, "Processes tracked individually")
      ->check(CLI::Range(64u, 1u << 20));

  ServeOptions serve;
  app.add_option("--web.listen-address", serve.listen_addresses,
                 "Address to listen on for metrics and the landing page (repeatable; host:port or :port)")
      ->capture_default_str();
  app.add_option("--web.telemetry-path", serve.telemetry_path, "Path under which to expose metrics");
  app.add_option("--web.config.file", serve.web_config_file,
                 "Web configuration file (exporter-toolkit format; basic_auth_users)");

  // systemd's StateDirectory= (the unit's) says where; a daemon started by
  // hand writes where the package's unit would.
  const char* state_directory = std::getenv("STATE_DIRECTORY");
  serve.capture.dir = state_directory && *state_directory
                          ? std::string(state_directory).substr(0, std::string(state_directory).find(':'))
                          : "/var/lib/migwatch";
  app.add_option("--capture.thresholds", serve.capture_thresholds_file,
                 "The alert rules' thresholds.json: a storm by them (host migration rate, a stopper's CPU share) "
                 "starts a capture. Empty: no captures; the default, if absent, too")
      ->capture_default_str();
  app.add_option("--capture.dir", serve.capture.dir,
                 "Directory of the storm capture files (default: $STATE_DIRECTORY, else /var/lib/migwatch)");
  app.add_option("--capture.duration", serve.capture.seconds, "Seconds one storm capture records")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--capture.interval", serve.capture.interval_seconds,
                 "Seconds between the starts of two storm captures, at least")
      ->check(CLI::Range(0.0, 1e7));
  app.add_option("--capture.max-files", serve.capture.max_files, "Storm capture files kept; the oldest go first")
      ->check(CLI::Range(size_t{1}, size_t{100000}));

  TopOptions top;
  auto* top_cmd = app.add_subcommand("top", "Live full-screen view of migrations and stopper cost");
  top_cmd->add_option("-d,--interval", top.interval_seconds, "Seconds between refreshes")
      ->check(CLI::Range(0.1, 3600.0));
  top_cmd->add_flag("-b,--batch", top.batch,
                    "Plain text, one report per interval (also when stdout is not a terminal)");
  top_cmd->add_option("-n,--iterations", top.iterations, "Stop after this many refreshes (0: until quit)")
      ->check(CLI::Range(0, 1000000));
  top_cmd->add_option("-s,--sort", top.sort,
                      "Order of the process and VM lists, also set by a key while running: migrations (m, per "
                      "second in the last interval), total (t, since start), name (n)")
      ->check(CLI::IsMember({"migrations", "total", "name"}));

  TraceOptions trace;
  auto* trace_cmd = app.add_subcommand("trace", "Print every classified migration as it happens");
  trace_cmd->add_option("-p,--pid", trace.pid, "Only this thread or process (filtered in the kernel)")
      ->check(CLI::Range(1u, 1u << 22));
  trace_cmd->add_option("-c,--comm", trace.comm, "Only tasks with this comm");
  trace_cmd->add_option("--vm", trace.vm, "Only threads of this VM");
  trace_cmd->add_option("-r,--reason", trace.reason, "Only this reason")
      ->check(CLI::IsMember({"wakeup", "load_balance", "active_balance", "affinity", "numa", "exec", "hotplug",
                             "rt_push_pull", "other"}));
  trace_cmd->add_option("--cpu", trace.cpu, "Only migrations from or to this CPU")->check(CLI::Range(0, 65535));
  trace_cmd->add_option("-D,--duration", trace.duration_seconds, "Stop after this many seconds (0: until Ctrl-C)")
      ->check(CLI::Range(0.0, 1e7));
  trace_cmd->add_option("--max-rate", trace.max_rate,
                        "Lines printed per second of the events' time stamps at most; the rest are counted as dropped")
      ->check(CLI::Range(1u, 10000000u));

  CaptureOptions capture;
  auto* capture_cmd = app.add_subcommand(
      "capture", "Record classified migrations and stopper runs into a Chrome JSON trace file (Perfetto, chrome://tracing)");
  capture_cmd->add_option("-D,--duration", capture.duration_seconds, "Seconds to record")
      ->required()
      ->check(CLI::Range(0.1, 3600.0));
  capture_cmd->add_option("-o,--output", capture.output, "The trace file to write")->required();

  CheckOptions check;
  auto* check_cmd = app.add_subcommand("check", "Self-test: kernel, BTF, permissions, probes, and a counted storm");
  check_cmd->add_option("--flips", check.storm_flips, "Affinity flips in the controlled storm")
      ->check(CLI::Range(100u, 10000000u));

  for (auto* sub : {top_cmd, trace_cmd, capture_cmd, check_cmd}) sub->fallthrough();
  app.require_subcommand(0, 1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0) {
      // One line (one journal entry) naming the problem and where to look,
      // whatever control characters the arguments it quotes contain.
      std::cerr << "migwatch: " << EscapeForMessage(e.what()) << " (see 'migwatch --help')\n";
      return e.get_exit_code();
    }
    return app.exit(e);
  }

  std::string error;
  if (!SetUpLogging(log_level, log_format, &error)) {
    std::cerr << "migwatch: " << EscapeForMessage(error) << "\n";
    return 2;
  }
  common.probes.use_fentry = !no_fentry;
  InstallStopHandlers();

  if (*top_cmd) {
    top.common = common;
    // The view lists the busiest names of each interval: folding every name
    // after the first few into "other", as the metrics must, would hide them.
    if (!app.get_option("--labels.cap")->count()) top.common.label_cap = 10000;
    return RunTop(top);
  }
  if (*trace_cmd) {
    trace.common = common;
    return RunTrace(trace);
  }
  if (*capture_cmd) {
    capture.common = common;
    return RunCapture(capture);
  }
  if (*check_cmd) {
    check.common = common;
    return RunCheck(check);
  }
  serve.common = common;
  // A daemon run from a build tree has no installed thresholds: no captures
  // then (it says so at start), unless a file is named.
  if (!app.get_option("--capture.thresholds")->count() && !std::filesystem::exists(serve.capture_thresholds_file))
    serve.capture_thresholds_file.clear();
  return RunServe(serve);
}

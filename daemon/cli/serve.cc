// The daemon: load the probes, serve /metrics, keep attribution current.
#include <bpf/libbpf.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "migwatch/cli/commands.h"
#include "migwatch/cli/process.h"
#include "migwatch/kernel/kernel_info.h"
#include "migwatch/export/metrics.h"
#include "migwatch/kernel/preflight.h"
#include "migwatch/kernel/privileges.h"
#include "migwatch/model/session.h"
#include "migwatch/cli/version.h"
#include "migwatch/export/web/error.h"
#include "migwatch/export/web/listen_address.h"
#include "migwatch/export/web/web_config.h"
#include "migwatch/export/web/web_server.h"

namespace migwatch {
namespace {

// Blocks SIGINT and SIGTERM in the calling thread while it lives. Threads
// started meanwhile keep them blocked, so the signals reach the main loop's
// thread, where they cut its wait short, not a thread that ignores them.
class StopSignalsBlocked {
 public:
  StopSignalsBlocked() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  }
  ~StopSignalsBlocked() { pthread_sigmask(SIG_UNBLOCK, &signals_, nullptr); }
  StopSignalsBlocked(const StopSignalsBlocked&) = delete;
  StopSignalsBlocked& operator=(const StopSignalsBlocked&) = delete;

 private:
  sigset_t signals_;
};

}  // namespace

int RunServe(const ServeOptions& options) {
  // Everything that can be wrong with the input is checked before the
  // probes are loaded, so that a bad flag never leaves programs behind.
  WebServerOptions web;
  try {
    web.listen_addresses = ParseListenAddresses(options.listen_addresses);
    ValidateTelemetryPath(options.telemetry_path);
    web.telemetry_path = options.telemetry_path;
    if (!options.web_config_file.empty()) web.web_config = LoadWebConfigFile(options.web_config_file);
  } catch (const WebError& e) {
    spdlog::error("{}", e.what());
    return 2;
  }
  std::optional<StormThresholds> storm_thresholds;
  if (!options.capture_thresholds_file.empty()) {
    std::string error;
    storm_thresholds = LoadStormThresholds(options.capture_thresholds_file, &error);
    if (!storm_thresholds) {
      spdlog::error("{}", error);
      return 2;
    }
  }
  web.landing_page = {"migwatch", std::string(kMigwatchVersion) + " (revision " + kMigwatchRevision + ")",
                      "Task migrations and migration/N stopper cost, per CPU, reason, requester, process and VM."};

  for (const auto& item : RunPreflight()) {
    if (item.status == PreflightStatus::kFail) {
      spdlog::error("{}", item.detail);
      return 1;
    }
  }
  std::string error;
  CommonOptions common = options.common;
  // Records go to the trace ring buffer only during a capture; it is sized
  // for one (4 MiB) all the same.
  common.probes.trace = storm_thresholds.has_value();
  auto session = Session::Open(common, &error);
  if (!session) {
    spdlog::error("{}", error);
    return 1;
  }
  // Said once the probes are attached: a start that fails says only why.
  if (!storm_thresholds) spdlog::info("no storm captures: no thresholds file (--capture.thresholds)");
  auto capturer = std::make_unique<StormCapturer>(*session, storm_thresholds, options.capture);
  auto collector = std::make_shared<MetricsCollector>(
      *session, BuildInfo{kMigwatchVersion, kMigwatchRevision, libbpf_version_string(), KernelRelease()},
      capturer->counts());

  // Loading and attaching needed privileges, and binding a port below 1024
  // may too; reading the maps, /proc and serving need none (or CAP_BPF alone
  // on older kernels). Dropped before the HTTP threads exist, so that none of
  // them ever holds a capability.
  CapabilityDrop dropped;
  web.before_serving = [&] { dropped = DropCapabilities(session->probes().cpus_fd()); };
  std::unique_ptr<WebServer> server;
  try {
    StopSignalsBlocked in_server_threads;
    server = std::make_unique<WebServer>(web);
  } catch (const WebError& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  if (!dropped.ok) {
    spdlog::error("{}", dropped.error);
    return 1;
  }
  spdlog::info("dropped all capabilities{}",
               dropped.kept_bpf ? " but the one bpf(2) needs for map access on this kernel" : "");
  server->RegisterCollectable(collector);
  const std::vector<int> ports = server->GetListeningPorts();
  for (size_t i = 0; i < ports.size() && i < web.listen_addresses.size(); ++i)
    spdlog::info("listening on {}:{}{}", web.listen_addresses[i].host, ports[i], web.telemetry_path);

  sd_notify(0, "READY=1\nSTATUS=serving metrics");
  uint64_t watchdog_usec = 0;
  bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  auto next_watchdog = std::chrono::steady_clock::now();
  auto next_sweep = std::chrono::steady_clock::now();
  const auto sweep_every = std::chrono::duration<double>(options.sweep_interval_seconds);

  while (!StopRequested()) {
    capturer->Tick();
    if (!session->ConsumeEvents()) break;
    auto now = std::chrono::steady_clock::now();
    // Fold exited processes even when nobody scrapes, so the process map
    // does not fill up with the dead.
    if (now >= next_sweep) {
      session->Sweep();
      next_sweep = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(sweep_every);
    }
    if (watchdog && now >= next_watchdog) {
      sd_notify(0, "WATCHDOG=1");
      next_watchdog = now + std::chrono::microseconds(watchdog_usec / 2);
    }
  }
  sd_notify(0, "STOPPING=1");
  spdlog::info("shutting down");
  // The server goes first: no scrape may read probes that are being freed.
  server.reset();
  // Before the session: a capture under way is completed from its probes.
  capturer.reset();
  spdlog::info("stopped serving; detaching the probes");
  session.reset();
  return 0;
}

}  // namespace migwatch

// The daemon: load the probes, serve /metrics, keep attribution current.
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>

#include "migwatch/attribution.h"
#include "migwatch/commands.h"
#include "migwatch/kernel_info.h"
#include "migwatch/metrics.h"
#include "migwatch/qemu_tracker.h"
#include "migwatch/session.h"
#include "migwatch/version.h"
#include "migwatch/web/error.h"
#include "migwatch/web/listen_address.h"
#include "migwatch/web/web_config.h"
#include "migwatch/web/web_server.h"

namespace migwatch {
namespace {

std::atomic<bool> g_stop{false};

void OnStopSignal(int) { g_stop.store(true); }

}  // namespace

bool StopRequested() { return g_stop.load(); }

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: blocking waits return EINTR so the loops see the flag.
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string VersionString() {
  return std::string("migwatch ") + kMigwatchVersion + " (revision " + kMigwatchRevision + ", libbpf " +
         libbpf_version_string() + ")";
}

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
  web.landing_page = {"migwatch", std::string(kMigwatchVersion) + " (revision " + kMigwatchRevision + ")",
                      "Task migrations and migration/N stopper cost, per CPU, reason, requester, process and VM."};

  std::string error;
  auto session = Session::Open(options.common, &error);
  if (!session) {
    spdlog::error("{}", error);
    return 1;
  }
  auto collector = std::make_shared<MetricsCollector>(
      session->probes(), session->attributor(), &session->qemu(),
      BuildInfo{kMigwatchVersion, kMigwatchRevision, libbpf_version_string(), KernelRelease()});

  std::unique_ptr<WebServer> server;
  try {
    server = std::make_unique<WebServer>(web);
  } catch (const WebError& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  server->RegisterCollectable(collector);
  for (const auto& a : web.listen_addresses) spdlog::info("listening on {}{}", a.ToString(), web.telemetry_path);

  sd_notify(0, "READY=1\nSTATUS=serving metrics");
  uint64_t watchdog_usec = 0;
  bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  auto next_watchdog = std::chrono::steady_clock::now();
  auto next_sweep = std::chrono::steady_clock::now();
  const auto sweep_every = std::chrono::duration<double>(options.sweep_interval_seconds);

  while (!StopRequested()) {
    if (!session->Poll(200)) break;
    auto now = std::chrono::steady_clock::now();
    // Fold exited processes even when nobody scrapes, so the process map
    // does not fill up with the dead.
    if (now >= next_sweep) {
      session->attributor().Update();
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
  session.reset();
  return 0;
}

}  // namespace migwatch

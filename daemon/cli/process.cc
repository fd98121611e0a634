#include "migwatch/cli/process.h"

#include <bpf/libbpf.h>

#include <atomic>
#include <csignal>

#include "migwatch/cli/version.h"

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

}  // namespace migwatch

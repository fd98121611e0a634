// What every command shares as a process: its version and how it is asked
// to stop.
#pragma once

#include <string>

namespace migwatch {

/// The version string `--version` prints.
std::string VersionString();

/// Set by SIGINT/SIGTERM; every long-running command polls it.
bool StopRequested();
/// Installs the SIGINT/SIGTERM handlers behind StopRequested().
void InstallStopHandlers();

}  // namespace migwatch

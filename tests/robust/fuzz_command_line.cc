// libFuzzer target: the command line, parsed by daemon/main.cc itself (built
// with its main() renamed MigwatchMain). The input is the arguments after
// "migwatch", separated by NUL bytes. The commands main() would run are
// replaced by checks of the options the parser hands them.
//
// What must hold for any input: no crash, no exception out of main(); a
// failing exit says why in exactly one line on stderr (one journal entry);
// the daemon's options are within the ranges its flags declare.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "migwatch/cli/commands.h"
#include "migwatch/cli/process.h"

int MigwatchMain(int argc, char** argv);

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

namespace migwatch {

int RunServe(const ServeOptions& options) {
  Require(options.common.label_cap >= 1 && options.common.label_cap <= 10000);
  Require(options.common.probes.max_processes >= 64 && options.common.probes.max_processes <= (1u << 20));
  Require(options.common.probes.max_processes >= 64 && options.common.probes.max_processes <= (1u << 20));
  Require(!options.listen_addresses.empty());
  Require(options.capture.seconds >= 0.1 && options.capture.seconds <= 3600);
  Require(options.capture.max_files >= 1);
  return 0;
}
int RunCapture(const CaptureOptions& options) {
  Require(options.duration_seconds >= 0.1 && options.duration_seconds <= 3600);
  return 0;
}
int RunTop(const TopOptions&) { return 0; }
int RunTrace(const TraceOptions&) { return 0; }
int RunCheck(const CheckOptions&) { return 0; }
std::string VersionString() { return "migwatch (fuzzing)"; }
bool StopRequested() { return true; }
void InstallStopHandlers() {}

}  // namespace migwatch

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args{"migwatch"};
  const std::string input(reinterpret_cast<const char*>(data), size);
  for (std::size_t begin = 0; begin <= input.size();) {
    std::size_t end = input.find('\0', begin);
    if (end == std::string::npos) end = input.size();
    args.push_back(input.substr(begin, end - begin));
    begin = end + 1;
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::ostringstream out, err;
  auto* saved_out = std::cout.rdbuf(out.rdbuf());
  auto* saved_err = std::cerr.rdbuf(err.rdbuf());
  const int status = MigwatchMain(static_cast<int>(args.size()), argv.data());
  std::cout.rdbuf(saved_out);
  std::cerr.rdbuf(saved_err);

  if (status != 0) {
    const std::string message = err.str();
    Require(!message.empty() && message.find('\n') == message.size() - 1);
  }
  return 0;
}

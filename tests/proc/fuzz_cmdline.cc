// libFuzzer target: ParseCmdline, then ParseQemuCommandLine on the result, on
// arbitrary /proc/<pid>/cmdline contents.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "migwatch/kernel/proc/cmdline.h"
#include "migwatch/kernel/proc/qemu.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> argv = migwatch::ParseCmdline(input);

  // Splitting loses nothing: joining the arguments gives the input back.
  std::string joined;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    if (i > 0) joined.push_back('\0');
    joined += argv[i];
  }
  if (input.ends_with('\0')) joined.push_back('\0');
  if (joined != input) std::abort();

  const bool is_qemu = !argv.empty() && migwatch::IsQemuBinary(argv.front());
  if (migwatch::ParseQemuCommandLine(argv).has_value() != is_qemu) std::abort();
  // Most inputs do not start with a QEMU binary: parse them as QEMU's too.
  if (!argv.empty()) {
    argv.front() = "/usr/bin/qemu-system-x86_64";
    const auto vm = migwatch::ParseQemuCommandLine(argv);
    if (!vm) std::abort();
    if (!vm->uuid.empty() && vm->uuid.size() != 36) std::abort();
  }
  return 0;
}

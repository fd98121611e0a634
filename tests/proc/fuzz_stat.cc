// libFuzzer target: ParseStat on arbitrary /proc/<pid>/stat contents.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "migwatch/kernel/proc/stat.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (const auto stat = migwatch::ParseStat(input)) {
    // The comm is copied out of the input, right after the first " (".
    if (input.find(" (" + stat->comm + ")") == std::string_view::npos) std::abort();
  }
  return 0;
}

// libFuzzer target: ParseSched on arbitrary /proc/<pid>/task/<tid>/sched
// contents.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "migwatch/kernel/proc/sched.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  migwatch::ParseSched(input);
  migwatch::ParseSchedMillisecondsToNs(input);
  return 0;
}

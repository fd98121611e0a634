// libFuzzer target: ParseSchedStat on arbitrary schedstat contents.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "migwatch/kernel/proc/schedstat.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  migwatch::ParseSchedStat(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

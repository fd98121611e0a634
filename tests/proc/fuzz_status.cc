// libFuzzer target: ParseStatusField and ParseCapabilityMask on arbitrary
// /proc/<pid>/status contents.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "migwatch/kernel/proc/status.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (const std::string_view key : {"Name", "CapEff", "CapPrm", "Uid", ""}) {
    const auto value = migwatch::ParseStatusField(input, key);
    if (value && input.find(*value) == std::string_view::npos) std::abort();
    if (value) migwatch::ParseCapabilityMask(*value);
  }
  // 16 hex digits hold 64 bits; a longer mask must be refused, not truncated.
  if (migwatch::ParseCapabilityMask(input) && size > 16) std::abort();
  return 0;
}

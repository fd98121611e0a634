// libFuzzer target: ParseWebConfig must either return a config whose hashes
// all passed validation or throw WebError with a one-line message. Anything
// else (another exception, a crash, a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "migwatch/export/web/error.h"
#include "migwatch/export/web/web_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  try {
    const migwatch::WebConfig config =
        migwatch::ParseWebConfig(yaml, "fuzz.yml");
    for (const auto& [user, hash] : config.basic_auth_users) {
      if (user.empty() || user.find(':') != std::string::npos ||
          hash.encoded.size() != 60 || hash.cost < migwatch::kMinBcryptCost ||
          hash.cost > migwatch::kMaxBcryptCost) {
        std::abort();
      }
    }
  } catch (const migwatch::WebError& error) {
    if (std::string_view(error.what()).find('\n') != std::string_view::npos) {
      std::abort();
    }
  }
  return 0;
}

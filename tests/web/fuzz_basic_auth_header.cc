// libFuzzer target: the Authorization header is the one input the web server
// takes from any client before authentication. Checking it must never crash,
// and must accept nothing but the configured credentials.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "migwatch/export/web/basic_auth.h"

namespace {

// bcrypt of "secret" at the lowest cost, to keep executions fast.
constexpr const char* kSecretHash =
    "$2b$04$So5L9SO5cEixa/7VEM7egeJa.EUvP/6h7oWC7CkhNeCmesfyTsUX2";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  static const migwatch::BasicAuthenticator authenticator(
      {{"prometheus",
        migwatch::BcryptHash{kSecretHash, migwatch::kMinBcryptCost}}});
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  if (authenticator.CheckAuthorizationHeader(header)) {
    // Accepted: "Basic" in any case, spaces, then base64 of
    // "prometheus:secret", where the character before the padding may differ
    // only in its two unused bits; spaces may follow.
    constexpr std::string_view kToken = "cHJvbWV0aGV1czpzZWNyZXQ=";
    std::string_view token = header.substr(std::min<std::size_t>(6, size));
    token.remove_prefix(std::min(token.find_first_not_of(' '), token.size()));
    token = token.substr(0, token.find_last_not_of(' ') + 1);
    if (token.size() != kToken.size() ||
        token.substr(0, 22) != kToken.substr(0, 22) || token[23] != '=') {
      std::abort();
    }
  }
  return 0;
}

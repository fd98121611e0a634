// --web.config.file: the exporter-toolkit web config, basic auth only.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace migwatch {

/// Lowest and highest bcrypt cost accepted in a web config file. The lower
/// bound is bcrypt's own; the upper one bounds what a failed login costs the
/// server: cost 14 already takes about a second of CPU per attempt, and every
/// request with wrong credentials pays it.
inline constexpr int kMinBcryptCost = 4;
inline constexpr int kMaxBcryptCost = 14;

/// A bcrypt hash from a web config file, validated at load: `$2a$`, `$2b$`
/// or `$2y$`, a cost within [kMinBcryptCost, kMaxBcryptCost], then 22
/// characters of salt and 31 of hash in bcrypt's base64 alphabet, canonically
/// encoded (so that `crypt_r` reproduces the exact string on a match).
struct BcryptHash {
  /// The 60-character hash as written in the file.
  std::string encoded{};
  /// Its cost (log2 of the number of key expansion rounds).
  int cost = 0;

  friend bool operator==(const BcryptHash&, const BcryptHash&) = default;
};

/// Contents of a `--web.config.file`, in the format of the Prometheus
/// exporter-toolkit:
///
///     basic_auth_users:
///       prometheus: $2b$10$...
///
/// `tls_server_config` is refused: civetweb's TLS crashes with OpenSSL 3 in
/// this build. `http_server_config` and any other key are refused rather than
/// ignored, so that a setting never silently has no effect.
struct WebConfig {
  /// User name to bcrypt hash. Empty means no authentication.
  std::map<std::string, BcryptHash, std::less<>> basic_auth_users{};

  friend bool operator==(const WebConfig&, const WebConfig&) = default;
};

/// Parses web config YAML. An empty document means no authentication.
/// @param source names the origin (usually the file path) in error messages.
/// @throws WebError with a one-line message that starts with `source`.
/// Thread-safe (pure function).
[[nodiscard]] WebConfig ParseWebConfig(std::string_view yaml, std::string_view source);

/// Reads and parses a web config file.
/// @throws WebError naming the path, for an unreadable file as well as for
///         invalid contents.
/// Thread-safe.
[[nodiscard]] WebConfig LoadWebConfigFile(const std::filesystem::path& path);

}  // namespace migwatch

// --web.listen-address: parsing, checking and civetweb spelling.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace migwatch {

/// One `--web.listen-address` value after validation.
///
/// The HTTP server (civetweb 1.15 as built for Debian) has no IPv6, so only
/// IPv4 is representable. `localhost` is stored as `127.0.0.1` and `0.0.0.0`
/// as all interfaces, so that equal sockets compare equal.
struct ListenAddress {
  /// IPv4 address in dotted-quad form; empty means all interfaces.
  std::string host{};
  /// TCP port; 0 asks the kernel for a free port.
  std::uint16_t port = 0;

  /// The address as the flag spells it: `127.0.0.1:9100` or `:9100`.
  [[nodiscard]] std::string ToString() const;

  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

/// Parses one listen address: `host:port` where host is an IPv4 literal or
/// `localhost`, or `:port` for all interfaces.
/// @throws WebError naming the value and the reason (empty, IPv6, host name,
///         missing, non-numeric or out-of-range port).
/// Thread-safe (pure function).
[[nodiscard]] ListenAddress ParseListenAddress(std::string_view text);

/// Parses every value of the repeatable flag and checks them as a set: the
/// list must not be empty, and no two entries may bind the same socket
/// (`127.0.0.1:9100` twice, or `:9100` with `127.0.0.1:9100`, which the
/// kernel would refuse). Port 0 entries never conflict: each gets its own
/// port.
/// @throws WebError for the first bad value or conflicting pair.
/// Thread-safe (pure function).
[[nodiscard]] std::vector<ListenAddress> ParseListenAddresses(std::span<const std::string> texts);

/// The civetweb `listening_ports` option for a validated list, e.g.
/// `127.0.0.1:9100,9200` (civetweb spells "all interfaces" as a bare port).
/// Thread-safe (pure function).
[[nodiscard]] std::string ToCivetwebListeningPorts(std::span<const ListenAddress> addresses);

}  // namespace migwatch

#include "migwatch/export/web/listen_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <limits>

#include "migwatch/export/web/error.h"
#include "migwatch/export/web/quote.h"

namespace migwatch {
namespace {

constexpr std::string_view kExpectedForm = "expected host:port or :port, e.g. 127.0.0.1:9100 or :9100";

[[noreturn]] void Reject(std::string_view text, std::string_view reason) {
  throw WebError("invalid listen address " + QuoteForMessage(text) + ": " + std::string(reason));
}

bool IsIpv4Literal(const std::string& host) {
  in_addr parsed{};
  // inet_pton accepts exactly four decimal octets, unlike inet_aton, which
  // also takes "127.1" and octal or hex parts. It reads a C string, so an
  // embedded NUL would hide a trailing part from it.
  return host.find('\0') == std::string::npos && inet_pton(AF_INET, host.c_str(), &parsed) == 1;
}

std::uint16_t ParsePort(std::string_view text, std::string_view port) {
  if (port.empty()) {
    Reject(text, "missing port; " + std::string(kExpectedForm));
  }
  unsigned long value = 0;
  const char* const port_end = port.data() + port.size();
  const auto [end, error] = std::from_chars(port.data(), port_end, value);
  if (error == std::errc::invalid_argument || end != port_end) {
    Reject(text, "port " + QuoteForMessage(port) + " is not a number");
  }
  if (error == std::errc::result_out_of_range || value > std::numeric_limits<std::uint16_t>::max()) {
    Reject(text, "port " + std::string(port) + " is out of range 0-65535");
  }
  return static_cast<std::uint16_t>(value);
}

bool BindTheSameSocket(const ListenAddress& a, const ListenAddress& b) {
  if (a.port != b.port || a.port == 0) {
    return false;
  }
  // All interfaces include every specific address on the same port.
  return a.host == b.host || a.host.empty() || b.host.empty();
}

}  // namespace

std::string ListenAddress::ToString() const { return host + ":" + std::to_string(port); }

ListenAddress ParseListenAddress(std::string_view text) {
  if (text.empty()) {
    Reject(text, "empty; " + std::string(kExpectedForm));
  }
  if (text.front() == '[' || text.find(':') != text.rfind(':')) {
    Reject(text,
           "IPv6 is not supported by this build's HTTP server (civetweb "
           "without IPv6); use an IPv4 address, localhost or :port");
  }
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    Reject(text, "missing port; " + std::string(kExpectedForm));
  }
  ListenAddress address;
  address.host = std::string(text.substr(0, colon));
  address.port = ParsePort(text, text.substr(colon + 1));
  if (address.host == "localhost") {
    // civetweb has no IPv6, so localhost can only mean the IPv4 loopback;
    // spelling it out makes "localhost:P" and "127.0.0.1:P" compare equal.
    address.host = "127.0.0.1";
  } else if (address.host == "0.0.0.0") {
    address.host.clear();
  } else if (!address.host.empty() && !IsIpv4Literal(address.host)) {
    Reject(text, "host " + QuoteForMessage(address.host) +
                     " is neither an IPv4 address nor localhost (host "
                     "names are not resolved)");
  }
  return address;
}

std::vector<ListenAddress> ParseListenAddresses(std::span<const std::string> texts) {
  if (texts.empty()) {
    throw WebError("no listen address given; at least one is required");
  }
  std::vector<ListenAddress> addresses;
  addresses.reserve(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    ListenAddress address = ParseListenAddress(texts[i]);
    for (std::size_t j = 0; j < addresses.size(); ++j) {
      if (!BindTheSameSocket(addresses[j], address)) {
        continue;
      }
      if (addresses[j] == address) {
        Reject(texts[i], "given more than once (also as " + QuoteForMessage(texts[j]) + ")");
      }
      Reject(texts[i], "overlaps with " + QuoteForMessage(texts[j]) +
                           ": all interfaces on a port include every "
                           "address on it");
    }
    addresses.push_back(std::move(address));
  }
  return addresses;
}

std::string ToCivetwebListeningPorts(std::span<const ListenAddress> addresses) {
  std::string ports;
  for (const ListenAddress& address : addresses) {
    if (!ports.empty()) {
      ports += ',';
    }
    // civetweb rejects ":9100" and spells all interfaces as a bare port.
    ports += address.host.empty() ? std::to_string(address.port) : address.ToString();
  }
  return ports;
}

}  // namespace migwatch

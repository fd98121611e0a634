// The HTTP endpoint: metrics, landing page, basic auth.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "migwatch/export/web/listen_address.h"
#include "migwatch/export/web/web_config.h"

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace migwatch {

/// What the HTML landing page at `/` says about the program.
struct LandingPage {
  std::string program_name{};  ///< e.g. "migwatch"
  std::string version{};       ///< shown as is, e.g. "0.1.0 (revision 1a2b3c)"
  std::string description{};   ///< one sentence
};

/// Everything a WebServer needs; each field comes from a validated flag.
struct WebServerOptions {
  /// From ParseListenAddresses; must not be empty.
  std::vector<ListenAddress> listen_addresses{};
  /// `--web.telemetry-path`; see ValidateTelemetryPath.
  std::string telemetry_path = "/metrics";
  /// From LoadWebConfigFile; no users means no authentication.
  WebConfig web_config{};
  LandingPage landing_page{};
  /// Called once, on the constructing thread, after every listen socket is
  /// bound and before civetweb starts the threads that serve requests: the
  /// place to drop privileges, so that no serving thread ever holds them.
  /// Must not throw.
  std::function<void()> before_serving{};
};

/// Checks a `--web.telemetry-path` value: it starts with `/`, is not `/`
/// itself (that is the landing page), and uses only letters, digits and
/// `/._~-`, so that it means the same to civetweb's URI matching, to the
/// HTML link and to a scrape config.
/// @throws WebError naming the path and the reason.
/// Thread-safe (pure function).
void ValidateTelemetryPath(std::string_view path);

/// The HTTP endpoint of the exporter, on top of prometheus-cpp's Exposer
/// (civetweb): the registered collectables on the telemetry path, an HTML
/// landing page linking to it on `/`, 404 elsewhere, and, when the web config
/// has users, HTTP basic auth on every path (401 with
/// `WWW-Authenticate: Basic realm="migwatch"` otherwise).
///
/// Serving starts in the constructor and stops in the destructor, which
/// waits for requests in flight to finish (and no longer: it wakes
/// civetweb's listening thread rather than wait for its poll timeout).
///
/// Thread-safe: RegisterCollectable and GetListeningPorts may be called from
/// any thread, also while requests are served.
class WebServer {
 public:
  /// Validates the options and starts listening on every address.
  /// @throws WebError for invalid options, and when the server cannot start,
  ///         naming the addresses and the reason given by the OS (e.g.
  ///         "Address already in use").
  explicit WebServer(WebServerOptions options);
  ~WebServer();

  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  /// Adds a collectable to the telemetry path. The server keeps only a weak
  /// reference: an expired one is skipped. Its Collect() must not throw
  /// (prometheus-cpp terminates the process if it does).
  void RegisterCollectable(std::weak_ptr<prometheus::Collectable> collectable);

  /// The bound TCP ports, in the order of the listen addresses; useful when
  /// an address asked for port 0.
  [[nodiscard]] std::vector<int> GetListeningPorts() const;

 private:
  class Router;

  std::string telemetry_path_;
  std::vector<ListenAddress> listen_addresses_;
  std::shared_ptr<const Router> router_;
  /// Declared last so that it is destroyed first: its destructor stops
  /// civetweb and waits for the worker threads, which use router_.
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace migwatch

#include "migwatch/export/web/web_server.h"

#include <CivetServer.h>
#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <prometheus/exposer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <utility>

#include "migwatch/export/web/basic_auth.h"
#include "migwatch/export/web/error.h"
#include "migwatch/export/web/quote.h"

namespace migwatch {
namespace {

// Enough workers that a scrape is still served while a few clients with
// wrong passwords keep others busy in bcrypt (up to a second each).
constexpr const char* kWorkerThreads = "4";

constexpr const char* kAuthChallenge = "Basic realm=\"migwatch\"";

std::string EscapeHtml(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&#39;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

std::string RenderLandingPage(const LandingPage& page, std::string_view telemetry_path) {
  const std::string name = EscapeHtml(page.program_name);
  std::string html;
  html += "<!DOCTYPE html>\n<html lang=\"en\">\n";
  html += "<head><meta charset=\"utf-8\"><title>" + name + "</title></head>\n";
  html += "<body>\n<h1>" + name + "</h1>\n";
  html += "<p>" + EscapeHtml(page.description) + "</p>\n";
  html += "<p>Version: " + EscapeHtml(page.version) + "</p>\n";
  html += "<ul><li><a href=\"" + EscapeHtml(telemetry_path) + "\">Metrics</a></li></ul>\n";
  html += "</body>\n</html>\n";
  return html;
}

// Sends a complete response from begin_request. Only C calls on fixed
// buffers: it cannot throw, so it can also answer after an exception.
int SendResponse(mg_connection* connection, int status, const char* content_type, std::string_view body,
                 std::initializer_list<std::pair<const char*, const char*>> extra_headers = {}) noexcept {
  std::array<char, 24> length{};
  std::snprintf(length.data(), length.size(), "%zu", body.size());
  mg_response_header_start(connection, status);
  mg_response_header_add(connection, "Content-Type", content_type, -1);
  mg_response_header_add(connection, "Content-Length", length.data(), -1);
  for (const auto& [name, value] : extra_headers) {
    mg_response_header_add(connection, name, value, -1);
  }
  mg_response_header_send(connection);
  const char* const method = mg_get_request_info(connection)->request_method;
  if (std::string_view(method) != "HEAD") {
    mg_write(connection, body.data(), body.size());
  }
  return status;
}

constexpr const char* kTextPlain = "text/plain; charset=utf-8";

// Opens and at once closes a TCP connection to a listening socket of ours.
void KnockOn(const ListenAddress& address, int port) {
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(static_cast<std::uint16_t>(port));
  // All interfaces include loopback.
  inet_pton(AF_INET, address.host.empty() ? "127.0.0.1" : address.host.c_str(), &target.sin_addr);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return;
  }
  connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof(target));
  close(fd);
}

}  // namespace

/// Per-server request handling. civetweb callbacks are plain function
/// pointers without a user argument, so they find their Router through a
/// process-wide map keyed by the civetweb context of the connection.
class WebServer::Router {
 public:
  Router(std::string telemetry_path, std::string landing_page, std::unique_ptr<BasicAuthenticator> authenticator)
      : telemetry_path_(std::move(telemetry_path)),
        landing_page_(std::move(landing_page)),
        authenticator_(std::move(authenticator)) {}

  /// Starts civetweb through prometheus-cpp with this router's callbacks.
  /// @throws WebError with civetweb's reason, e.g. "cannot bind to
  ///         127.0.0.1:9100: 98 (Address already in use)".
  static std::unique_ptr<prometheus::Exposer> Start(std::shared_ptr<const Router> router,
                                                    std::span<const ListenAddress> addresses,
                                                    const std::function<void()>& before_serving) {
    StartAttempt attempt{.router = std::move(router), .before_serving = &before_serving};
    current_start_ = &attempt;
    try {
      auto exposer = std::make_unique<prometheus::Exposer>(
          std::vector<std::string>{"listening_ports", ToCivetwebListeningPorts(addresses), "num_threads",
                                   kWorkerThreads},
          &Callbacks());
      current_start_ = nullptr;
      return exposer;
    } catch (const std::exception& error) {
      current_start_ = nullptr;
      if (attempt.context != nullptr) {
        Forget(attempt.context);
      }
      std::string listed;
      for (const ListenAddress& address : addresses) {
        listed += (listed.empty() ? "" : ", ") + address.ToString();
      }
      // prometheus-cpp only says "Possible problem binding to port".
      throw WebError("cannot serve HTTP on " + listed + ": " +
                     (attempt.first_error.empty() ? error.what() : attempt.first_error));
    }
  }

  /// Answers every request with 503 from now on, and returns once none is
  /// on its way to the metrics handler any more: prometheus-cpp removes that
  /// handler before it stops civetweb, and a request dispatched then would
  /// get civetweb's 404.
  void Drain() const {
    stopping_.store(true);
    while (in_flight_.load() > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

 private:
  // What the starting thread learns from civetweb: mg_start calls
  // init_context and, on failure, log_message on that thread.
  struct StartAttempt {
    std::shared_ptr<const Router> router;
    const std::function<void()>* before_serving = nullptr;
    const mg_context* context = nullptr;
    std::string first_error{};
  };

  static const CivetCallbacks& Callbacks() {
    static const CivetCallbacks callbacks = [] {
      CivetCallbacks result;
      result.init_context = &InitContext;
      result.exit_context = &ExitContext;
      result.begin_request = &BeginRequest;
      result.end_request = &EndRequest;
      result.log_message = &LogMessage;
      return result;
    }();
    return callbacks;
  }

  // Called by mg_start once the listen sockets are bound, before it starts
  // the worker and listening threads.
  static void InitContext(const mg_context* context) {
    if (current_start_ == nullptr) {
      return;
    }
    current_start_->context = context;
    {
      const std::lock_guard lock(registry_mutex_);
      registry_.insert_or_assign(context, current_start_->router);
    }
    if (*current_start_->before_serving) {
      (*current_start_->before_serving)();
    }
  }

  // Called by mg_stop after the worker threads have ended.
  static void ExitContext(const mg_context* context) { Forget(context); }

  static void Forget(const mg_context* context) {
    const std::lock_guard lock(registry_mutex_);
    registry_.erase(context);
  }

  static int LogMessage(const mg_connection* /*connection*/, const char* message) {
    if (current_start_ == nullptr) {
      return 0;  // while serving: civetweb's own handling
    }
    // The first message names the cause, e.g. "cannot bind to
    // 127.0.0.1:9100: 98 (Address already in use)"; later ones only say
    // that startup failed.
    if (current_start_->first_error.empty()) {
      current_start_->first_error = message;
    }
    return 1;
  }

  // Called by civetweb for every request before its own dispatch. A C
  // callback: nothing may propagate out of it.
  static int BeginRequest(mg_connection* connection) {
    try {
      std::shared_ptr<const Router> router;
      {
        const std::lock_guard lock(registry_mutex_);
        if (const auto found = registry_.find(mg_get_context(connection)); found != registry_.end()) {
          router = found->second;
        }
      }
      if (!router) {
        return SendResponse(connection, 503, kTextPlain, "Service Unavailable\n");
      }
      // Counted before the stop flag is read, so that Drain, which sets the
      // flag first, waits for every request that saw it unset.
      router->in_flight_.fetch_add(1);
      mg_set_user_connection_data(connection, const_cast<Router*>(router.get()));
      if (router->stopping_.load()) {
        return SendResponse(connection, 503, kTextPlain, "Service Unavailable: shutting down\n");
      }
      return router->Handle(connection);
    } catch (...) {
      return SendResponse(connection, 500, kTextPlain, "Internal Server Error\n");
    }
  }

  // Called by civetweb after every request that BeginRequest saw.
  static void EndRequest(const mg_connection* connection, int /*status*/) {
    if (const auto* router = static_cast<const Router*>(mg_get_user_connection_data(connection))) {
      router->in_flight_.fetch_sub(1);
      mg_set_user_connection_data(connection, nullptr);
    }
  }

  int Handle(mg_connection* connection) const {
    if (authenticator_) {
      const char* const authorization = mg_get_header(connection, "Authorization");
      if (authorization == nullptr || !authenticator_->CheckAuthorizationHeader(authorization)) {
        return SendResponse(connection, 401, kTextPlain, "Unauthorized\n", {{"WWW-Authenticate", kAuthChallenge}});
      }
    }
    const mg_request_info* const request = mg_get_request_info(connection);
    // local_uri is decoded, without the query and with dot segments
    // resolved; it is null for requests addressed to another host.
    const std::string_view path = request->local_uri != nullptr ? request->local_uri : "";
    if (path == telemetry_path_) {
      return 0;  // prometheus-cpp's handler serves the metrics
    }
    if (path != "/") {
      return SendResponse(connection, 404, kTextPlain, "Not Found\n");
    }
    const std::string_view method = request->request_method;
    if (method != "GET" && method != "HEAD") {
      return SendResponse(connection, 405, kTextPlain, "Method Not Allowed\n", {{"Allow", "GET, HEAD"}});
    }
    return SendResponse(connection, 200, "text/html; charset=utf-8", landing_page_);
  }

  const std::string telemetry_path_;
  const std::string landing_page_;
  const std::unique_ptr<BasicAuthenticator> authenticator_;

  // Requests between BeginRequest and EndRequest, and whether the server
  // is stopping.
  mutable std::atomic<int> in_flight_{0};
  mutable std::atomic<bool> stopping_{false};

  static inline thread_local StartAttempt* current_start_ = nullptr;
  static inline std::mutex registry_mutex_;
  static inline std::unordered_map<const mg_context*, std::shared_ptr<const Router>> registry_;
};

void ValidateTelemetryPath(std::string_view path) {
  const auto reject = [&](std::string_view reason) {
    throw WebError("invalid telemetry path " + QuoteForMessage(path) + ": " + std::string(reason));
  };
  if (!path.starts_with('/')) {
    reject("must start with /");
  }
  if (path == "/") {
    reject("/ is the landing page; use e.g. /metrics");
  }
  if (path.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789/._~-") != std::string_view::npos) {
    reject("only letters, digits and /._~- are allowed");
  }
}

WebServer::WebServer(WebServerOptions options)
    : telemetry_path_(std::move(options.telemetry_path)), listen_addresses_(options.listen_addresses) {
  ValidateTelemetryPath(telemetry_path_);
  if (options.listen_addresses.empty()) {
    throw WebError("no listen address given; at least one is required");
  }
  auto& users = options.web_config.basic_auth_users;
  router_ =
      std::make_shared<const Router>(telemetry_path_, RenderLandingPage(options.landing_page, telemetry_path_),
                                     users.empty() ? nullptr : std::make_unique<BasicAuthenticator>(std::move(users)));

  exposer_ = Router::Start(router_, options.listen_addresses, options.before_serving);
}

WebServer::~WebServer() {
  router_->Drain();
  // civetweb's listening thread sees mg_stop's stop flag only when its
  // poll() returns, up to two seconds later (SOCKET_TIMEOUT_QUANTUM), and
  // mg_stop waits for it. A connection makes poll() return at once: knock
  // until the server has stopped.
  const std::vector<int> ports = exposer_->GetListeningPorts();
  std::atomic<bool> stopped{false};
  std::thread knocker([&] {
    while (!stopped.load()) {
      for (std::size_t i = 0; i < ports.size() && i < listen_addresses_.size(); ++i) {
        KnockOn(listen_addresses_[i], ports[i]);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  exposer_.reset();
  stopped.store(true);
  knocker.join();
}

void WebServer::RegisterCollectable(std::weak_ptr<prometheus::Collectable> collectable) {
  exposer_->RegisterCollectable(collectable, telemetry_path_);
}

std::vector<int> WebServer::GetListeningPorts() const { return exposer_->GetListeningPorts(); }

}  // namespace migwatch

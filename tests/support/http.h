// An HTTP client for the daemon's web server (libcurl).
#pragma once

#include <string>

namespace migwatch::testing {

/// One HTTP GET.
struct Response {
  long status = 0;  ///< 0 if the request failed
  std::string body;
  std::string error;  ///< the transfer error, if any
  double seconds = 0;
};
/// GET http://127.0.0.1:`port``path`.
Response HttpGet(int port, const std::string& path = "/metrics", double timeout_s = 30);

}  // namespace migwatch::testing

// The one error type of the web component.
#pragma once

#include <stdexcept>

namespace migwatch {

/// The one error type of the web component: an invalid listen address, web
/// config file or telemetry path, or an HTTP server that cannot start.
/// `what()` is a single line that names the offending value and says why, fit
/// to print as is before exiting.
class WebError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace migwatch

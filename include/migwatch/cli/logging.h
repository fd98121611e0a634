// Log setup: stderr (the journal under systemd), logfmt or JSON.
#pragma once

#include <string>

namespace migwatch {

/// Configures the default logger. Returns false and sets `error` for an
/// unknown level or format.
bool SetUpLogging(const std::string& level, const std::string& format, std::string* error);

}  // namespace migwatch

// Escaping outside text for one-line error messages.
#pragma once

#include <string>
#include <string_view>

namespace migwatch {

/// `text` with control characters, backslashes and bytes outside ASCII
/// written as \xNN, so that an error message that embeds text from outside
/// stays one readable line. Thread-safe (pure function).
std::string EscapeForMessage(std::string_view text);

/// `text` escaped as by EscapeForMessage, double quotes included, and put in
/// double quotes. Thread-safe (pure function).
std::string QuoteForMessage(std::string_view text);

}  // namespace migwatch

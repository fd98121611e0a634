#include "migwatch/export/web/quote.h"

#include <cstdio>

namespace migwatch {
namespace {

std::string Escape(std::string_view text, bool escape_quotes) {
  std::string escaped;
  escaped.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f || c == '\\' || (escape_quotes && c == '"')) {
      char code[5];
      std::snprintf(code, sizeof code, "\\x%02x", byte);
      escaped += code;
    } else {
      escaped += c;
    }
  }
  return escaped;
}

}  // namespace

std::string EscapeForMessage(std::string_view text) { return Escape(text, false); }

std::string QuoteForMessage(std::string_view text) { return "\"" + Escape(text, true) + "\""; }

}  // namespace migwatch

#include "migwatch/cli/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

namespace migwatch {
namespace {

// Escapes a message for a double-quoted logfmt value or a JSON string.
void AppendQuoted(std::string_view s, spdlog::memory_buf_t& dest) {
  dest.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': dest.append(std::string_view("\\\"")); break;
      case '\\': dest.append(std::string_view("\\\\")); break;
      case '\n': dest.append(std::string_view("\\n")); break;
      case '\t': dest.append(std::string_view("\\t")); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          dest.append(std::string_view(buf));
        } else {
          dest.push_back(c);
        }
    }
  }
  dest.push_back('"');
}

// One line per record, in the structure the Prometheus exporters use:
// logfmt `ts=... level=... msg="..."` or a JSON object with the same keys.
class StructuredFormatter : public spdlog::formatter {
 public:
  explicit StructuredFormatter(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto t = std::chrono::system_clock::to_time_t(msg.time);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count() % 1000;
    std::tm tm;
    gmtime_r(&t, &tm);
    char ts[64];
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    const auto level_name = spdlog::level::to_string_view(msg.level);
    const std::string_view level(level_name.data(), level_name.size());
    std::string_view text(msg.payload.data(), msg.payload.size());
    // The same three fields in either syntax: {"ts":"...",...} or ts=... ...
    auto field = [&](std::string_view key, bool first) {
      if (!first) dest.push_back(json_ ? ',' : ' ');
      if (json_) dest.push_back('"');
      dest.append(key);
      dest.append(json_ ? std::string_view("\":") : std::string_view("="));
    };
    // Timestamp and level never need escaping; JSON still wants quotes.
    auto bare = [&](std::string_view value) {
      if (json_) dest.push_back('"');
      dest.append(value);
      if (json_) dest.push_back('"');
    };
    if (json_) dest.push_back('{');
    field("ts", true);
    bare(ts);
    field("level", false);
    bare(level);
    field("msg", false);
    AppendQuoted(text, dest);
    if (json_) dest.push_back('}');
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<StructuredFormatter>(json_); }

 private:
  bool json_;
};

}  // namespace

bool SetUpLogging(const std::string& level, const std::string& format, std::string* error) {
  auto lvl = spdlog::level::from_str(level);
  // from_str answers "off" for anything it does not know.
  if (lvl == spdlog::level::off && level != "off") {
    *error = "unknown --log.level '" + level + "' (debug, info, warn, error)";
    return false;
  }
  if (format != "logfmt" && format != "json") {
    *error = "unknown --log.format '" + format + "' (logfmt, json)";
    return false;
  }
  auto logger = std::make_shared<spdlog::logger>("migwatch", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(std::make_unique<StructuredFormatter>(format == "json"));
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return true;
}

}  // namespace migwatch

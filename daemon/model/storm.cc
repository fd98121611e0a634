#include "migwatch/model/storm.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "migwatch/model/labels.h"

namespace migwatch {
namespace {

// The "value" of each entry of thresholds.json: a number, or a string (a
// duration). Entries of other shapes are an error. A reader of this one
// shape, so that the daemon needs no JSON library.
struct Setting {
  std::optional<double> number;
  std::string text;
};

class ThresholdsReader {
 public:
  explicit ThresholdsReader(const std::string& text) : text_(text) {}

  bool Read(std::map<std::string, Setting>* out, std::string* error) {
    if (!Object([&](const std::string& key) {
          Setting setting;
          bool has_value = false;
          if (!Object([&](const std::string& field) {
                if (field != "value") return Skip();
                has_value = true;
                return Value(&setting);
              }))
            return false;
          if (!has_value) return Fail("\"" + key + "\" has no \"value\"");
          (*out)[key] = setting;
          return true;
        }))
      return Report(error);
    SkipSpace();
    if (pos_ != text_.size()) {
      Fail("text after the object");
      return Report(error);
    }
    return true;
  }

 private:
  bool Report(std::string* error) {
    *error = why_ + " at byte " + std::to_string(pos_);
    return false;
  }
  bool Fail(const std::string& why) {
    if (why_.empty()) why_ = why;
    return false;
  }
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Expect(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return Fail(std::string("expected '") + c + "'");
  }
  bool Peek(char c) {
    SkipSpace();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  template <typename OnMember>
  bool Object(OnMember on_member) {
    if (!Expect('{')) return false;
    if (Peek('}')) return ++pos_, true;
    for (;;) {
      std::string key;
      if (!String(&key) || !Expect(':') || !on_member(key)) return false;
      if (Peek(',')) {
        ++pos_;
        continue;
      }
      return Expect('}');
    }
  }
  bool String(std::string* out) {
    if (!Expect('"')) return false;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (c == '\\') {
        if (pos_ >= text_.size()) break;
        c = text_[pos_++];
        if (c == 'u') {
          pos_ += 4;  // a help text's escaped character: not needed
          c = '?';
        } else if (c == 'n') {
          c = '\n';
        } else if (c == 't') {
          c = '\t';
        }
      }
      out->push_back(c);
    }
    return Expect('"');
  }
  bool Number(double* out) {
    SkipSpace();
    const size_t start = pos_;
    while (pos_ < text_.size() && std::string_view("+-.0123456789eE").find(text_[pos_]) != std::string_view::npos)
      ++pos_;
    std::istringstream in(text_.substr(start, pos_ - start));
    if (start == pos_ || !(in >> *out) || !in.eof()) return Fail("expected a number");
    return true;
  }
  bool Value(Setting* setting) {
    if (Peek('"')) return String(&setting->text);
    double number = 0;
    if (!Number(&number)) return false;
    setting->number = number;
    return true;
  }
  // Any value of another field (help texts), nested or not.
  bool Skip() {
    if (Peek('"')) {
      std::string ignored;
      return String(&ignored);
    }
    if (Peek('{')) return Object([&](const std::string&) { return Skip(); });
    SkipSpace();
    for (const char* word : {"true", "false", "null"})
      if (text_.compare(pos_, std::string_view(word).size(), word) == 0) {
        pos_ += std::string_view(word).size();
        return true;
      }
    double ignored;
    return Number(&ignored);
  }

  const std::string& text_;
  size_t pos_ = 0;
  std::string why_;
};

}  // namespace

std::optional<double> PrometheusDurationSeconds(const std::string& text) {
  static const std::map<std::string, double> kUnits = {{"ms", 0.001}, {"s", 1},      {"m", 60},      {"h", 3600},
                                                       {"d", 86400},  {"w", 604800}, {"y", 31536000}};
  double seconds = 0;
  size_t pos = 0;
  if (text.empty()) return std::nullopt;
  while (pos < text.size()) {
    size_t digits = pos;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    size_t unit_end = digits;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) ++unit_end;
    auto unit = kUnits.find(text.substr(digits, unit_end - digits));
    if (digits == pos || unit == kUnits.end()) return std::nullopt;
    seconds += std::stod(text.substr(pos, digits - pos)) * unit->second;
    pos = unit_end;
  }
  return seconds;
}

std::optional<StormThresholds> LoadStormThresholds(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read the thresholds file " + path;
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string content = text.str();
  std::map<std::string, Setting> settings;
  std::string why;
  if (!ThresholdsReader(content).Read(&settings, &why)) {
    *error = "the thresholds file " + path + " is not thresholds.json's format: " + why;
    return std::nullopt;
  }
  const auto number = [&](const char* key, double* out) {
    auto it = settings.find(key);
    if (it == settings.end() || !it->second.number || !(*it->second.number >= 0)) {
      *error = "the thresholds file " + path + " has no number >= 0 for \"" + key + "\"";
      return false;
    }
    *out = *it->second.number;
    return true;
  };
  StormThresholds t;
  if (!number("storm_min_rate", &t.storm_min_rate) || !number("storm_factor", &t.storm_factor) ||
      !number("stopper_cpu_ratio", &t.stopper_cpu_ratio))
    return std::nullopt;
  auto window = settings.find("storm_baseline_window");
  std::optional<double> seconds;
  if (window == settings.end() || !(seconds = PrometheusDurationSeconds(window->second.text)) || *seconds <= 0) {
    *error = "the thresholds file " + path + " has no duration for \"storm_baseline_window\"";
    return std::nullopt;
  }
  t.storm_baseline_seconds = *seconds;
  return t;
}

std::optional<std::string> StormDetector::Observe(const CounterSnapshot& counters, double seconds) {
  std::optional<CounterSnapshot> previous = std::move(previous_);
  previous_ = counters;
  if (!previous || !(seconds > 0)) return std::nullopt;

  std::optional<std::string> storm;
  char text[128];
  for (size_t cpu = 0; cpu < counters.cpus.size() && cpu < previous->cpus.size() && !storm; ++cpu) {
    const double share = (counters.cpus[cpu].stopper_run_ns - previous->cpus[cpu].stopper_run_ns) / 1e9 / seconds;
    if (share > thresholds_.stopper_cpu_ratio) {
      std::snprintf(text, sizeof(text), "migration/%zu at %.1f%% of its CPU", cpu, share * 100);
      storm = text;
    }
  }
  const bool first = baseline_.empty();
  if (first) baseline_.resize(MW_REASON_COUNT);
  // The weight of this interval in an average over the baseline window.
  const double weight = first ? 1 : 1 - std::exp(-seconds / thresholds_.storm_baseline_seconds);
  std::vector<double> rates(MW_REASON_COUNT);
  // How far a reason's rate lies above its own baseline; one that had none
  // at all, furthest.
  const auto above_baseline = [&](int r) {
    return baseline_[r] > 0 ? rates[r] / baseline_[r] : std::numeric_limits<double>::infinity();
  };
  // Of the reasons above both thresholds, the one furthest above its
  // baseline, then the fastest: what is unusual about this storm. An
  // affinity storm also makes its flipper's wakeups migrate, as fast or
  // faster, but wakeups were common before it.
  int storming = -1;
  for (int r = 0; r < MW_REASON_COUNT; ++r) {
    rates[r] = (counters.host.migrations[r] - previous->host.migrations[r]) / seconds;
    if (first || !(rates[r] > thresholds_.storm_min_rate) || !(rates[r] > thresholds_.storm_factor * baseline_[r]))
      continue;
    if (storming < 0 || above_baseline(r) > above_baseline(storming) ||
        (above_baseline(r) == above_baseline(storming) && rates[r] > rates[storming]))
      storming = r;
  }
  if (!storm && storming >= 0) {
    std::snprintf(text, sizeof(text), "%s migrations at %.0f/s", std::string(ReasonName(storming)).c_str(),
                  rates[storming]);
    storm = text;
  }
  if (!storm)
    for (int r = 0; r < MW_REASON_COUNT; ++r) baseline_[r] += weight * (rates[r] - baseline_[r]);
  return storm;
}

}  // namespace migwatch

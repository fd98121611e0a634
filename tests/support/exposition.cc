#include "support/exposition.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string_view>

#include "support/http.h"

namespace migwatch::testing {

namespace {

// "name{a=\"x\",b=\"y\"}" -> name and labels; nullopt if malformed.
std::optional<std::pair<std::string, std::map<std::string, std::string>>> SplitSeries(std::string_view series) {
  size_t brace = series.find('{');
  std::string name(series.substr(0, brace));
  static const std::regex metric_name("[a-zA-Z_:][a-zA-Z0-9_:]*");
  if (!std::regex_match(name, metric_name)) return std::nullopt;
  std::map<std::string, std::string> labels;
  if (brace == std::string_view::npos) return std::make_pair(name, labels);
  if (series.back() != '}') return std::nullopt;
  size_t i = brace + 1;
  const size_t end = series.size() - 1;
  while (i < end) {
    size_t eq = series.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= end || series[eq + 1] != '"') return std::nullopt;
    std::string label(series.substr(i, eq - i));
    std::string value;
    size_t j = eq + 2;
    for (; j < end && series[j] != '"'; ++j) {
      if (series[j] == '\\' && j + 1 < end) {
        char c = series[++j];
        value += c == 'n' ? '\n' : c;
      } else {
        value += series[j];
      }
    }
    if (j >= end) return std::nullopt;
    if (!labels.emplace(label, value).second) return std::nullopt;
    i = j + 1;
    if (i < end && series[i] == ',') ++i;
  }
  return std::make_pair(name, labels);
}

}  // namespace

std::optional<Exposition> ParseExposition(const std::string& body, std::string* error) {
  Exposition e;
  if (body.empty() || body.back() != '\n') {
    *error = "the body does not end with a newline (truncated?)";
    return std::nullopt;
  }
  std::istringstream in(body);
  std::string line;
  size_t number = 0;
  auto fail = [&](const std::string& why) {
    *error = "line " + std::to_string(number) + ": " + why + ": " + line.substr(0, 200);
    return std::nullopt;
  };
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) return fail("empty line");
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, keyword, family, type;
      words >> hash >> keyword >> family >> type;
      if (keyword == "TYPE") {
        if (e.types.count(family)) return fail("family declared twice");
        e.families.push_back(family);
        e.types[family] = type;
      }
      continue;
    }
    size_t space = line.rfind(' ');
    if (space == std::string::npos) return fail("no value");
    std::string series = line.substr(0, space);
    const char* value_text = line.c_str() + space + 1;
    char* value_end = nullptr;
    double value = std::strtod(value_text, &value_end);
    if (value_end == value_text || *value_end != '\0') return fail("value is not a number");
    auto split = SplitSeries(series);
    if (!split) return fail("malformed name or labels");
    const std::string& name = split->first;
    bool declared = e.types.count(name) > 0;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s(suffix);
      if (name.size() > s.size() && name.ends_with(s) && e.types.count(name.substr(0, name.size() - s.size())))
        declared = true;
    }
    if (!declared) return fail("sample of an undeclared family");
    if (!e.samples.emplace(series, value).second) return fail("series repeated");
  }
  return e;
}

double Sum(const Exposition& e, const std::string& family, const std::vector<std::string>& labels) {
  double sum = 0;
  for (const auto& [series, value] : e.samples) {
    auto split = SplitSeries(series);
    if (!split || split->first != family) continue;
    bool match = true;
    for (const auto& want : labels) {
      size_t eq = want.find('=');
      std::string name = want.substr(0, eq), wanted = want.substr(eq + 2, want.size() - eq - 3);
      auto it = split->second.find(name);
      match &= it != split->second.end() && it->second == wanted;
    }
    if (match) sum += value;
  }
  return sum;
}

std::set<std::string> LabelValues(const Exposition& e, const std::string& family, const std::string& label) {
  std::set<std::string> values;
  for (const auto& [series, value] : e.samples) {
    auto split = SplitSeries(series);
    if (!split || split->first != family) continue;
    if (auto it = split->second.find(label); it != split->second.end()) values.insert(it->second);
  }
  return values;
}

Exposition Scrape(int port) {
  Response r = HttpGet(port);
  EXPECT_EQ(r.status, 200) << r.error;
  std::string error;
  auto e = ParseExposition(r.body, &error);
  EXPECT_TRUE(e) << error;
  return e.value_or(Exposition{});
}

std::string ProbeModes(const Exposition& e) {
  std::string modes;
  const std::string family = "migwatch_probe_attached{";
  for (const auto& [series, value] : e.samples) {
    if (series.rfind(family, 0) != 0) continue;
    modes += series.substr(family.size(), series.size() - family.size() - 1) + " " +
             std::to_string(static_cast<int>(value)) + "\n";
  }
  return modes;
}

}  // namespace migwatch::testing

#include "migwatch/export/catalogue.h"

#include <stdexcept>

namespace migwatch {

using prometheus::MetricType;

namespace {

// "cpu direction" -> {"cpu", "direction"}: views into the table's literals.
std::vector<std::string_view> SplitLabels(std::string_view names) {
  std::vector<std::string_view> labels;
  while (!names.empty()) {
    const size_t space = names.find(' ');
    if (space != 0) labels.push_back(names.substr(0, space));
    names = space == std::string_view::npos ? std::string_view() : names.substr(space + 1);
  }
  return labels;
}

}  // namespace

const std::vector<MetricSpec>& Catalogue() {
  static const std::vector<MetricSpec> catalogue = [] {
    std::vector<MetricSpec> specs;
#define MIGWATCH_METRIC(name, type, labels, origin, help) \
  specs.push_back({name, MetricType::type, help, SplitLabels(labels), #origin});
#include "catalogue.def"
#undef MIGWATCH_METRIC
    return specs;
  }();
  return catalogue;
}

const MetricSpec& Spec(std::string_view name) {
  for (const auto& spec : Catalogue())
    if (spec.name == name) return spec;
  throw std::out_of_range("metric family " + std::string(name) + " is not in the catalogue");
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::Counter:
      return "counter";
    case MetricType::Gauge:
      return "gauge";
    case MetricType::Summary:
      return "summary";
    case MetricType::Histogram:
      return "histogram";
    case MetricType::Untyped:
      break;
  }
  return "untyped";
}

std::string MarkdownTable() {
  std::string out = "| metric | type | labels | meaning |\n|---|---|---|---|\n";
  for (const auto& spec : Catalogue()) {
    std::string labels;
    for (auto label : spec.labels) labels += std::string(labels.empty() ? "" : ", ") + "`" + std::string(label) + "`";
    std::string help(spec.help);
    // A table cell cannot hold a bare '|'.
    for (size_t at = 0; (at = help.find('|', at)) != std::string::npos; at += 2) help.replace(at, 1, "\\|");
    out += "| `" + std::string(spec.name) + "` | " + std::string(TypeName(spec.type)) + " | " + labels + " | " + help +
           (spec.origin == "migwatch" ? "" : " (" + std::string(spec.origin) + ")") + " |\n";
  }
  return out;
}

std::string NamesList() {
  std::string out =
      "# The metric names migwatch exports (the metrics contract), one per line.\n"
      "# Generated from daemon/export/catalogue.cc: cmake --build build --target metric-docs\n"
      "# Dashboards and alert rule tests may use these names only; see lint.py.\n";
  for (MetricType type : {MetricType::Counter, MetricType::Gauge, MetricType::Summary}) {
    out += std::string("\n# ") + (type == MetricType::Counter ? "Counters" : type == MetricType::Gauge ? "Gauges"
                                                                                                         : "Summaries") +
           "\n";
    for (const auto& spec : Catalogue()) {
      if (spec.type != type) continue;
      out += std::string(spec.name) + "\n";
      if (type == MetricType::Summary) out += std::string(spec.name) + "_sum\n" + std::string(spec.name) + "_count\n";
    }
  }
  out += "\n# Added by Prometheus to every scraped target\nup\nscrape_duration_seconds\nscrape_samples_scraped\n";
  return out;
}

}  // namespace migwatch

// The metrics contract: every family the endpoint serves, with its type,
// help and label names, one line each in daemon/export/catalogue.def.
// metrics.cc builds its families from these entries,
// and the README's metric table and tests/deploy/metric_names.txt are
// generated from them (mw_catalogue), so that the four cannot drift apart.
#pragma once

#include <prometheus/metric_type.h>

#include <string>
#include <string_view>
#include <vector>

namespace migwatch {

/// One metric family.
struct MetricSpec {
  std::string_view name;
  prometheus::MetricType type;
  std::string_view help;                 ///< the HELP line, also the README's meaning
  std::vector<std::string_view> labels;  ///< label names, in the order series carry them
  /// Who builds it: "migwatch", or "prometheus_cpp" for the HTTP library's
  /// own families (their help is the library's).
  std::string_view origin = "migwatch";
};

/// Every family, in the order of the README's table.
const std::vector<MetricSpec>& Catalogue();

/// The entry named `name`. Throws std::out_of_range for a name that is not
/// in the catalogue: a family cannot be exported without an entry.
const MetricSpec& Spec(std::string_view name);

/// "counter", "gauge", "summary", ... as in a `# TYPE` line.
std::string_view TypeName(prometheus::MetricType type);

/// The README's metric table (Markdown, one row per family).
std::string MarkdownTable();

/// tests/deploy/metric_names.txt: every series name a dashboard or a rule
/// may use, per type, plus those Prometheus adds to every target.
std::string NamesList();

}  // namespace migwatch

// The Prometheus text format of /metrics: parsing a scrape and reading it.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace migwatch::testing {

/// A scrape in the Prometheus text format, parsed.
struct Exposition {
  /// Series (the sample line up to its value: name and labels as printed)
  /// to value.
  std::map<std::string, double> samples;
  /// Family names in the order of their "# TYPE" lines.
  std::vector<std::string> families;
  std::map<std::string, std::string> types;  ///< family -> counter, gauge, ...
};
/// Parses `body`; nullopt and `error` when a line is not the text format, a
/// sample belongs to no declared family, a series repeats, or the body does
/// not end with a newline.
std::optional<Exposition> ParseExposition(const std::string& body, std::string* error);

/// Sum of the samples of `family` whose label set contains every
/// `name="value"` pair of `labels` (given as `name="value"` strings).
double Sum(const Exposition& e, const std::string& family, const std::vector<std::string>& labels = {});
/// Distinct values of label `label` among the samples of `family`.
std::set<std::string> LabelValues(const Exposition& e, const std::string& family, const std::string& label);

/// A scrape of /metrics on 127.0.0.1:`port` that must succeed and parse
/// (EXPECTs otherwise).
Exposition Scrape(int port);

/// The series of migwatch_probe_attached: "probe mode value" per probe, in
/// one string, so that two daemons' probes compare at a glance.
std::string ProbeModes(const Exposition& e);

}  // namespace migwatch::testing

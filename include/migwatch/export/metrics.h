// The Prometheus view of migwatch: read at scrape time from the BPF maps.
#pragma once

#include <prometheus/collectable.h>

#include <string>
#include <vector>

namespace migwatch {

class Session;
struct CaptureCounts;

struct BuildInfo {
  std::string version;
  std::string revision;
  std::string libbpf_version;
  std::string kernel;
};

/// Collects every migwatch_* family, plus process_* for the daemon itself.
///
/// Nothing is cached between scrapes: each Collect() takes a snapshot of
/// the session. Collect() never throws; a part that cannot be read is left
/// out and logged. Thread-safe: the exposer may call Collect() from several
/// threads at once.
class MetricsCollector : public prometheus::Collectable {
 public:
  /// `captures`: the daemon's storm captures, read at each scrape.
  MetricsCollector(Session& session, BuildInfo build, const CaptureCounts& captures);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  Session& session_;
  BuildInfo build_;
  const CaptureCounts& captures_;
};

/// process_* metrics of the calling process, as official clients export them.
std::vector<prometheus::MetricFamily> CollectSelfProcess();

}  // namespace migwatch

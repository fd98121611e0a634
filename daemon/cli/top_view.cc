// The text of migwatch top: the rates between two samples of the counters,
// as tables fitted to the screen. The full screen and the batch output both
// print these lines, so both show the same.
#include "migwatch/cli/top_view.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "migwatch/kernel/proc/qemu.h"
#include "migwatch/model/labels.h"

namespace migwatch::top {
namespace {

std::string SortKeysHelp(const std::string& active) {
  std::string keys = "keys: ";
  for (const auto& k : kSortKeys) {
    keys += std::string(1, static_cast<char>(k.key)) + " " + k.help + (active == k.name ? "*" : "") + ", ";
  }
  return keys + "q quit (* = current sort)";
}

uint64_t Sum(const ReasonCounts& counts) {
  uint64_t total = 0;
  for (uint64_t v : counts) total += v;
  return total;
}

template <typename V>
V ValueOr0(const std::map<std::string, V>& map, const std::string& key) {
  auto it = map.find(key);
  return it == map.end() ? V{} : it->second;
}

ReasonCounts Grew(const ReasonCounts& now, const ReasonCounts& before) {
  ReasonCounts grew{};
  for (int r = 0; r < MW_REASON_COUNT; ++r) grew[r] = now[r] - before[r];
  return grew;
}

template <typename... Args>
std::string Format(const char* fmt, Args... args) {
  char buf[256];
  snprintf(buf, sizeof(buf), fmt, args...);
  return buf;
}

// Rates keep one decimal below 10/s, so that a trickle does not read as 0.
std::string Rate(double per_second) {
  return Format(per_second == 0 || per_second >= 10 ? "%.0f" : "%.1f", per_second);
}

std::string Percent(double pct) { return Format("%.2f%%", pct); }

// Names longer than their column are cut, ending in '+' as top(1) does.
std::string Fit(const std::string& s, size_t width) {
  return s.size() <= width ? s : s.substr(0, width - 1) + "+";
}

// "affinity 64%": the reason behind most of `grew`, or "-".
std::string MainReason(const ReasonCounts& grew) {
  const uint64_t total = Sum(grew);
  if (total == 0) return "-";
  const int top = static_cast<int>(std::max_element(grew.begin(), grew.end()) - grew.begin());
  return std::string(ReasonName(top)) + Format(" %.0f%%", 100.0 * grew[top] / total);
}

constexpr size_t kNameWidth = 20;

Section CpuSection(const Sample& before, const Sample& now, double secs) {
  Section s{Format("%5s %10s %10s %13s %9s  %s", "CPU", "IN/s", "OUT/s", "MIGRATION/N%", "RUNS/s", "TOP WORK"), {}};
  const size_t cpus = std::min({now.counters.cpu_moves.size(), now.counters.cpus.size(),
                                before.counters.cpu_moves.size(), before.counters.cpus.size()});
  struct Busy {
    uint64_t stopper_ns, moves;
    size_t cpu;
    std::string text;
  };
  std::vector<Busy> busy;
  for (size_t cpu = 0; cpu < cpus; ++cpu) {
    const auto& sn = now.counters.cpus[cpu];
    const auto& sb = before.counters.cpus[cpu];
    const uint64_t in = now.counters.cpu_moves[cpu].in - before.counters.cpu_moves[cpu].in;
    const uint64_t out = now.counters.cpu_moves[cpu].out - before.counters.cpu_moves[cpu].out;
    int top_work = -1;
    uint64_t top_ns = 0;
    for (int w = 0; w < MW_WORK_COUNT; ++w) {
      if (sn.stopper_work_ns[w] - sb.stopper_work_ns[w] > top_ns) {
        top_ns = sn.stopper_work_ns[w] - sb.stopper_work_ns[w];
        top_work = w;
      }
    }
    const uint64_t run_ns = sn.stopper_run_ns - sb.stopper_run_ns;
    busy.push_back({run_ns, in + out, cpu,
                    Format("%5zu %10s %10s %13s %9s  %s", cpu, Rate(in / secs).c_str(), Rate(out / secs).c_str(),
                           Percent(100.0 * run_ns / (secs * 1e9)).c_str(),
                           Rate((sn.stopper_runs - sb.stopper_runs) / secs).c_str(),
                           top_work < 0 ? "-" : std::string(WorkName(top_work)).c_str())});
  }
  std::stable_sort(busy.begin(), busy.end(), [](const Busy& a, const Busy& b) {
    return a.stopper_ns != b.stopper_ns ? a.stopper_ns > b.stopper_ns : a.moves > b.moves;
  });
  for (auto& b : busy) s.rows.push_back({std::move(b.text), b.cpu});
  return s;
}

Section RequesterSection(const Sample& before, const Sample& now, double secs) {
  Section s{Format("%-*s %9s %9s %11s", static_cast<int>(kNameWidth), "STOPPER REQUESTER", "STOPPER%", "RUNS/s",
                   "AFFINITY/s"),
            {}};
  struct Requester {
    uint64_t ns, changes;
    std::string text;
  };
  std::vector<Requester> requesters;
  const auto& t = now.totals;
  const auto& b = before.totals;
  for (const auto& [name, total_ns] : t.requester_stopper_ns) {
    const uint64_t ns = total_ns - ValueOr0(b.requester_stopper_ns, name);
    const uint64_t runs = ValueOr0(t.requester_stopper_runs, name) - ValueOr0(b.requester_stopper_runs, name);
    const uint64_t changes = ValueOr0(t.affinity_changes, name) - ValueOr0(b.affinity_changes, name);
    if (!ns && !runs && !changes) continue;
    requesters.push_back({ns, changes,
                          Format("%-*s %9s %9s %11s", static_cast<int>(kNameWidth), Fit(name, kNameWidth).c_str(),
                                 Percent(100.0 * ns / (secs * 1e9)).c_str(), Rate(runs / secs).c_str(),
                                 Rate(changes / secs).c_str())});
  }
  std::stable_sort(requesters.begin(), requesters.end(), [](const Requester& x, const Requester& y) {
    return x.ns != y.ns ? x.ns > y.ns : x.changes > y.changes;
  });
  for (size_t i = 0; i < requesters.size(); ++i) s.rows.push_back({std::move(requesters[i].text), i});
  return s;
}

// Processes or VMs, in the order of the sort key. With the default sort
// only those that moved in the interval are listed; the others list every
// name seen since the start.
struct Moved {
  std::string name;
  ReasonCounts grew;
  uint64_t total;
  uint64_t stopper_ns;
};

void SortMoved(std::vector<Moved>* moved, const std::string& sort) {
  std::sort(moved->begin(), moved->end(), [&](const Moved& a, const Moved& b) {
    if (sort == "migrations" && Sum(a.grew) != Sum(b.grew)) return Sum(a.grew) > Sum(b.grew);
    if (sort != "name" && a.total != b.total) return a.total > b.total;
    return a.name < b.name;
  });
  if (sort == "migrations")
    std::erase_if(*moved, [](const Moved& m) { return Sum(m.grew) == 0; });
}

Section ProcessSection(const Sample& before, const Sample& now, double secs, const std::string& sort) {
  Section s{Format("%-*s %13s %12s  %s", static_cast<int>(kNameWidth), "PROCESS", "MIGRATIONS/s", "TOTAL",
                   "MAIN REASON"),
            {}};
  std::vector<Moved> moved;
  for (const auto& [name, counts] : now.totals.process_migrations)
    moved.push_back({name, Grew(counts, ValueOr0(before.totals.process_migrations, name)), Sum(counts), 0});
  SortMoved(&moved, sort);
  for (size_t i = 0; i < moved.size(); ++i) {
    const Moved& m = moved[i];
    s.rows.push_back({Format("%-*s %13s %12lu  %s", static_cast<int>(kNameWidth), Fit(m.name, kNameWidth).c_str(),
                             Rate(Sum(m.grew) / secs).c_str(), m.total, MainReason(m.grew).c_str()),
                      i});
  }
  return s;
}

Section VmSection(const Sample& before, const Sample& now, double secs, const std::string& sort) {
  Section s{Format("%-*s %13s %12s %9s  %s", static_cast<int>(kNameWidth), "VM", "MIGRATIONS/s", "TOTAL",
                   "STOPPER%", "MAIN REASON"),
            {}};
  std::vector<Moved> moved;
  for (const auto& [name, counts] : now.totals.vm_migrations)
    moved.push_back({name, Grew(counts, ValueOr0(before.totals.vm_migrations, name)), Sum(counts),
                     ValueOr0(now.totals.vm_stopper_ns, name) - ValueOr0(before.totals.vm_stopper_ns, name)});
  SortMoved(&moved, sort);
  for (size_t i = 0; i < moved.size(); ++i) {
    const Moved& m = moved[i];
    s.rows.push_back({Format("%-*s %13s %12lu %9s  %s", static_cast<int>(kNameWidth), Fit(m.name, kNameWidth).c_str(),
                             Rate(Sum(m.grew) / secs).c_str(), m.total,
                             Percent(100.0 * m.stopper_ns / (secs * 1e9)).c_str(), MainReason(m.grew).c_str()),
                      i});
  }
  return s;
}

Section LiveMigrationSection(const Sample& now) {
  Section s{Format("%-*s %-12s %8s %10s", static_cast<int>(kNameWidth), "QEMU LIVE MIGRATION", "SIDE", "THREADS",
                   "RUNNING"),
            {}};
  size_t i = 0;
  for (const QemuMigrationSide& m : now.qemu.sides) {
    if (!m.active) continue;
    s.rows.push_back({Format("%-*s %-12s %8zu %9.0fs", static_cast<int>(kNameWidth), Fit(m.vm, kNameWidth).c_str(),
                             std::string(MigrationSideName(m.side)).c_str(), m.threads,
                             static_cast<double>(now.wall) - m.start_time_seconds),
                      i++});
  }
  return s;
}

}  // namespace

Sample MakeSample(Snapshot snapshot, std::chrono::steady_clock::time_point at, time_t wall) {
  Sample s;
  s.at = at;
  s.wall = wall;
  s.counters = std::move(snapshot.counters);
  s.totals = std::move(snapshot.attribution);
  s.qemu = std::move(snapshot.qemu);
  return s;
}

std::vector<std::string> Layout(const std::vector<Section>& sections, size_t height) {
  const size_t n = sections.size();
  std::vector<size_t> shown(n, 0);
  size_t used = 0, visible = 0;
  for (; visible < n; ++visible) {
    const size_t need = (visible ? 1 : 0) + 2;  // blank line between sections, header, first row
    if (height && used + need > height) break;
    used += need;
    shown[visible] = 1;
  }
  for (bool grew = true; grew;) {
    grew = false;
    for (size_t i = 0; i < visible && (!height || used < height); ++i) {
      if (shown[i] < sections[i].rows.size()) {
        ++shown[i];
        ++used;
        grew = true;
      }
    }
  }
  std::vector<std::string> lines;
  for (size_t i = 0; i < visible; ++i) {
    const Section& s = sections[i];
    if (i) lines.emplace_back();
    lines.push_back(s.header);
    if (s.rows.empty()) {
      lines.emplace_back("(none)");
      continue;
    }
    if (shown[i] < s.rows.size()) lines.back() += Format("   (%zu of %zu)", shown[i], s.rows.size());
    std::vector<Row> rows(s.rows.begin(), s.rows.begin() + shown[i]);
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.order < b.order; });
    for (const auto& r : rows) lines.push_back(r.text);
  }
  return lines;
}

std::vector<std::string> Render(const Sample& before, const Sample& now, const View& view) {
  const double secs = std::max(1e-3, std::chrono::duration<double>(now.at - before.at).count());
  std::vector<std::string> lines;
  ReasonCounts reasons{};
  for (int r = 0; r < MW_REASON_COUNT; ++r)
    reasons[r] = now.counters.host.migrations[r] - before.counters.host.migrations[r];
  struct tm tm;
  localtime_r(&now.wall, &tm);
  lines.push_back(Format("migwatch top - %02d:%02d:%02d - %s migrations/s over %.1fs", tm.tm_hour, tm.tm_min,
                         tm.tm_sec, Rate(Sum(reasons) / secs).c_str(), secs));
  std::string by_reason = "reasons/s:";
  for (int r = 0; r < MW_REASON_COUNT; ++r)
    if (reasons[r]) by_reason += " " + std::string(ReasonName(r)) + " " + Rate(reasons[r] / secs);
  lines.push_back(Sum(reasons) ? by_reason : "reasons/s: none");
  lines.push_back(view.interactive ? SortKeysHelp(view.sort) : "processes and VMs sorted by " + view.sort);
  lines.emplace_back();

  const size_t header_lines = lines.size();
  const std::vector<Section> sections = {
      CpuSection(before, now, secs),
      RequesterSection(before, now, secs),
      ProcessSection(before, now, secs, view.sort),
      VmSection(before, now, secs, view.sort),
      LiveMigrationSection(now),
  };
  const size_t body_height = view.height == 0 ? 0 : view.height > header_lines ? view.height - header_lines : 0;
  if (view.height == 0 || body_height > 0)
    for (auto& l : Layout(sections, body_height)) lines.push_back(std::move(l));
  if (view.height) lines.resize(std::min(lines.size(), view.height));
  if (view.width)
    for (auto& l : lines) l = l.substr(0, view.width);
  return lines;
}

std::string WaitingTitle(double interval_seconds) {
  return Format("migwatch top - first view in %.1fs", interval_seconds);
}

}  // namespace migwatch::top

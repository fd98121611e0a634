// migwatch top: a live view of migrations and stopper cost, like top(1).
//
// Every refresh shows the rates between the last two samples of the
// counters. One renderer produces the text of both the full screen and the
// batch output (--batch, or stdout not a terminal), so both show the same.
#include <curses.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "migwatch/cli/commands.h"
#include "migwatch/cli/process.h"
#include "migwatch/model/labels.h"
#include "migwatch/model/session.h"
#include "migwatch/kernel/maps.h"

namespace migwatch {
namespace {

using Clock = std::chrono::steady_clock;

// The orders of the process and VM lists: the key that selects each one on
// screen and its name in --sort.
struct SortKey {
  int key;
  const char* name;
  const char* help;
};
constexpr SortKey kSortKeys[] = {
    {'m', "migrations", "migrations/s"},
    {'t', "total", "total since start"},
    {'n', "name", "name"},
};

std::string SortKeysHelp(const std::string& active) {
  std::string keys = "keys: ";
  for (const auto& k : kSortKeys) {
    keys += std::string(1, static_cast<char>(k.key)) + " " + k.help + (active == k.name ? "*" : "") + ", ";
  }
  return keys + "q quit (* = current sort)";
}

struct Sample {
  Clock::time_point at;
  time_t wall;
  CounterSnapshot counters;
  AttributionTotals totals;
  QemuState qemu;
};

Sample TakeSample(Session& session) {
  Sample s;
  s.at = Clock::now();
  s.wall = time(nullptr);
  Snapshot snapshot = session.TakeSnapshot();
  s.counters = std::move(snapshot.counters);
  s.totals = std::move(snapshot.attribution);
  s.qemu = std::move(snapshot.qemu);
  return s;
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

// A table: its column header and its rows, most important first. `order`
// is where a row goes among the rows shown (CPUs stay in CPU order even when
// only the busiest fit).
struct Row {
  std::string text;
  size_t order;
};
struct Section {
  std::string header;
  std::vector<Row> rows;
};

// Fits the sections into `height` lines (0: no limit). Each section that
// fits gets its header and one row (or "(none)") first, in turn; the lines
// left go to further rows, one per section in turn. A section cut short
// says how many of its rows it shows.
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

struct View {
  std::string sort;
  size_t width = 0;   ///< 0: lines are not cut
  size_t height = 0;  ///< 0: every row is shown
  bool interactive = false;
};

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
                           Percent(100.0 * run_ns / (secs * 1e9)).c_str(), Rate((sn.stopper_runs - sb.stopper_runs) / secs).c_str(),
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

Clock::duration Interval(const TopOptions& options) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.interval_seconds));
}

int RunBatch(Session& session, const TopOptions& options) {
  Sample previous = TakeSample(session);
  auto next = previous.at + Interval(options);
  for (int i = 0; options.iterations == 0 || i < options.iterations; ++i) {
    while (Clock::now() < next) {
      if (StopRequested()) return 0;
      if (!session.ConsumeEvents()) return 1;
      struct timespec wait = {0, 50 * 1000 * 1000};
      nanosleep(&wait, nullptr);
    }
    next += Interval(options);
    Sample now = TakeSample(session);
    for (const auto& line : Render(previous, now, View{options.sort, 0, 0, false})) std::printf("%s\n", line.c_str());
    std::printf("\n");
    std::fflush(stdout);
    previous = std::move(now);
  }
  return 0;
}

void Draw(const std::vector<std::string>& lines) {
  erase();
  for (int y = 0; y < LINES && y < static_cast<int>(lines.size()); ++y) mvaddnstr(y, 0, lines[y].c_str(), COLS);
  refresh();
}

int RunScreen(Session& session, const TopOptions& options, SCREEN* screen) {
  cbreak();
  noecho();
  curs_set(0);
  keypad(stdscr, TRUE);
  timeout(100);  // getch() waits at most this many ms, so task events keep flowing
  std::string sort = options.sort;
  Sample previous = TakeSample(session);
  std::optional<Sample> current;
  auto next = previous.at + Interval(options);
  int refreshes = 0, status = 0;
  bool redraw = true;
  for (;;) {
    if (redraw) {
      redraw = false;
      const size_t width = COLS > 0 ? COLS : 1, height = LINES > 0 ? LINES : 1;
      if (current)
        Draw(Render(previous, *current, View{sort, width, height, true}));
      else
        Draw({Format("migwatch top - first view in %.1fs", options.interval_seconds).substr(0, width)});
      if (options.iterations && refreshes >= options.iterations) break;
    }
    const int ch = getch();
    if (ch == 'q' || ch == 'Q' || StopRequested()) break;
    for (const auto& k : kSortKeys) {
      if (ch == k.key) {
        sort = k.name;
        redraw = true;
      }
    }
    if (!session.ConsumeEvents()) {
      status = 1;
      break;
    }
    if (Clock::now() >= next) {
      if (current) previous = std::move(*current);
      current = TakeSample(session);
      next = std::max(next + Interval(options), Clock::now());
      ++refreshes;
      redraw = true;
    }
    if (ch == KEY_RESIZE) redraw = true;
  }
  endwin();
  delscreen(screen);
  return status;
}

}  // namespace

int RunTop(const TopOptions& options) {
  std::string error;
  auto session = Session::Open(options.common, &error);
  if (!session) {
    spdlog::error("{}", error);
    return 1;
  }
  if (options.batch || !isatty(STDOUT_FILENO)) return RunBatch(*session, options);
  // newterm() reports an unusable terminal instead of exiting as initscr() does.
  SCREEN* screen = newterm(nullptr, stdout, stdin);
  if (!screen) {
    const char* term = std::getenv("TERM");
    spdlog::warn("curses cannot drive this terminal (TERM={}); printing plain text as with --batch",
                 term ? term : "unset");
    return RunBatch(*session, options);
  }
  // Log lines would scribble over the screen; errors still matter.
  spdlog::set_level(spdlog::level::err);
  return RunScreen(*session, options, screen);
}

}  // namespace migwatch

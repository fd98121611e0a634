// migwatch top: a live view of migrations and stopper cost, like top(1).
#include <curses.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "migwatch/commands.h"
#include "migwatch/labels.h"
#include "migwatch/session.h"
#include "migwatch/snapshot.h"

namespace migwatch {
namespace {

using Clock = std::chrono::steady_clock;

struct Sample {
  Clock::time_point at;
  CounterSnapshot counters;
  AttributionTotals totals;
};

Sample TakeSample(Session& session) {
  Sample s;
  s.at = Clock::now();
  ReadCounters(session.probes(), &s.counters);
  session.attributor().Update();
  s.totals = session.attributor().Totals();
  return s;
}

uint64_t Total(const ReasonCounts& c) {
  uint64_t t = 0;
  for (uint64_t v : c) t += v;
  return t;
}

template <typename Map>
uint64_t Grew(const Map& now, const Map& before, const typename Map::key_type& key) {
  auto n = now.find(key);
  auto b = before.find(key);
  uint64_t nv = 0, bv = 0;
  if constexpr (std::is_same_v<typename Map::mapped_type, ReasonCounts>) {
    nv = n == now.end() ? 0 : Total(n->second);
    bv = b == before.end() ? 0 : Total(b->second);
  } else {
    nv = n == now.end() ? 0 : n->second;
    bv = b == before.end() ? 0 : b->second;
  }
  return nv - bv;
}

struct Row {
  std::string name;
  double rate;
  double stopper_pct;
};

// Renders the difference between two samples as lines of at most `width`
// characters; the same text feeds the full screen and the batch output.
std::vector<std::string> Render(const Sample& before, const Sample& now, Session& session, const std::string& sort,
                                size_t width, size_t max_rows) {
  std::vector<std::string> out;
  char buf[512];
  const double secs = std::max(1e-3, std::chrono::duration<double>(now.at - before.at).count());
  auto line = [&](const char* fmt, auto... args) {
    snprintf(buf, sizeof(buf), fmt, args...);
    out.emplace_back(std::string(buf).substr(0, width));
  };

  uint64_t total = 0;
  for (int r = 0; r < MW_REASON_COUNT; ++r) total += now.counters.host.migrations[r] - before.counters.host.migrations[r];
  line("migwatch top - %.0f migrations/s over %.1fs   (q quit, m/s sort processes by migrations/stopper)",
       total / secs, secs);
  std::string reasons = "reasons/s:";
  for (int r = 0; r < MW_REASON_COUNT; ++r) {
    uint64_t d = now.counters.host.migrations[r] - before.counters.host.migrations[r];
    if (d) reasons += " " + std::string(ReasonName(r)) + "=" + std::to_string(static_cast<uint64_t>(d / secs));
  }
  out.push_back(reasons.substr(0, width));
  out.emplace_back("");

  line("%5s %10s %10s %12s %s", "CPU", "IN/s", "OUT/s", "MIGRATION/N%", "STOPPER WORK");
  for (size_t cpu = 0; cpu < now.counters.cpu_moves.size() && cpu < now.counters.stopper.size(); ++cpu) {
    const auto& sn = now.counters.stopper[cpu];
    const auto& sb = before.counters.stopper[cpu];
    double pct = 100.0 * (sn.run_ns - sb.run_ns) / (secs * 1e9);
    int top_work = -1;
    uint64_t top_ns = 0;
    for (int w = 0; w < MW_WORK_COUNT; ++w)
      if (sn.work_ns[w] - sb.work_ns[w] > top_ns) top_ns = sn.work_ns[w] - sb.work_ns[w], top_work = w;
    line("%5zu %10.0f %10.0f %11.2f%% %s", cpu, (now.counters.cpu_moves[cpu].in - before.counters.cpu_moves[cpu].in) / secs,
         (now.counters.cpu_moves[cpu].out - before.counters.cpu_moves[cpu].out) / secs, pct,
         top_work >= 0 ? std::string(WorkName(top_work)).c_str() : "-");
  }
  out.emplace_back("");

  auto top_rows = [&](const char* title, std::vector<Row> rows, bool by_stopper) {
    std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
      return by_stopper ? a.stopper_pct > b.stopper_pct : a.rate > b.rate;
    });
    line("%-24s %12s %12s", title, "MIGRATIONS/s", "STOPPER%");
    size_t shown = 0;
    for (const auto& r : rows) {
      if (shown++ >= max_rows || (r.rate == 0 && r.stopper_pct == 0)) break;
      line("%-24s %12.0f %11.2f%%", r.name.c_str(), r.rate, r.stopper_pct);
    }
    if (shown == 0 || (rows.empty())) line("%-24s", "(none)");
    out.emplace_back("");
  };

  std::vector<Row> requesters;
  for (const auto& [name, ns] : now.totals.requester_stopper_ns) {
    double pct = 100.0 * Grew(now.totals.requester_stopper_ns, before.totals.requester_stopper_ns, name) / (secs * 1e9);
    requesters.push_back({name, Grew(now.totals.affinity_changes, before.totals.affinity_changes, name) / secs, pct});
  }
  std::sort(requesters.begin(), requesters.end(), [](const Row& a, const Row& b) { return a.stopper_pct > b.stopper_pct; });
  line("%-24s %12s %12s", "STOPPER REQUESTER", "AFFINITY/s", "STOPPER%");
  size_t shown = 0;
  for (const auto& r : requesters) {
    if (shown >= max_rows || r.stopper_pct == 0) break;
    line("%-24s %12.0f %11.2f%%", r.name.c_str(), r.rate, r.stopper_pct);
    ++shown;
  }
  if (!shown) line("(none)");
  out.emplace_back("");

  std::vector<Row> processes;
  for (const auto& [name, counts] : now.totals.process_migrations)
    processes.push_back({name, Grew(now.totals.process_migrations, before.totals.process_migrations, name) / secs, 0});
  top_rows("PROCESS", processes, sort == "stopper");

  std::vector<Row> vms;
  for (const auto& [name, counts] : now.totals.vm_migrations)
    vms.push_back({name, Grew(now.totals.vm_migrations, before.totals.vm_migrations, name) / secs,
                   100.0 * Grew(now.totals.vm_stopper_ns, before.totals.vm_stopper_ns, name) / (secs * 1e9)});
  top_rows("VM", vms, sort == "stopper");

  auto live = session.qemu().Live();
  line("QEMU LIVE MIGRATIONS: %zu", live.size());
  double unix_now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& m : live)
    line("  vm=%-20s %-11s threads=%zu running %.0fs", m.vm.c_str(), std::string(MigrationSideName(m.side)).c_str(),
         m.threads, unix_now - m.start_time_seconds);
  return out;
}

// Waits one interval, delivering task events meanwhile. Returns false to quit.
bool WaitInterval(Session& session, double seconds) {
  auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < until) {
    if (StopRequested() || !session.Poll(50)) return false;
  }
  return true;
}

int RunBatch(Session& session, const TopOptions& options) {
  Sample before = TakeSample(session);
  for (int i = 0; options.iterations == 0 || i < options.iterations; ++i) {
    if (!WaitInterval(session, options.interval_seconds)) break;
    Sample now = TakeSample(session);
    for (const auto& l : Render(before, now, session, options.sort, 200, 10)) std::printf("%s\n", l.c_str());
    std::printf("\n");
    std::fflush(stdout);
    before = std::move(now);
  }
  return 0;
}

int RunScreen(Session& session, const TopOptions& options) {
  initscr();
  cbreak();
  noecho();
  curs_set(0);
  keypad(stdscr, TRUE);
  timeout(50);  // getch() waits at most 50 ms
  std::string sort = options.sort;
  // The view shows the rates between the last two samples.
  Sample previous = TakeSample(session);
  Sample current = previous;
  bool have_view = false;
  auto next = Clock::now() +
              std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.interval_seconds));
  int iterations = 0;
  for (;;) {
    int ch = getch();
    if (ch == 'q' || ch == 'Q' || StopRequested()) break;
    if (ch == 'm') sort = "migrations";
    if (ch == 's') sort = "stopper";
    session.Poll(0);
    bool redraw = ch == KEY_RESIZE || ch == 'm' || ch == 's';
    if (Clock::now() >= next) {
      previous = std::move(current);
      current = TakeSample(session);
      have_view = redraw = true;
      next = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(options.interval_seconds));
      ++iterations;
    }
    if (redraw && have_view) {
      erase();
      size_t rows = LINES > 20 ? (LINES - 14) / 3 : 3;
      auto lines = Render(previous, current, session, sort, COLS > 0 ? COLS : 80, rows);
      for (int y = 0; y < LINES && y < static_cast<int>(lines.size()); ++y) mvaddstr(y, 0, lines[y].c_str());
      refresh();
    }
    if (options.iterations && iterations >= options.iterations) break;
  }
  endwin();
  return 0;
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
  // Probe logs would scribble over the screen.
  spdlog::set_level(spdlog::level::warn);
  return RunScreen(*session, options);
}

}  // namespace migwatch

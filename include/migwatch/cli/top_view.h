// The text of `migwatch top`: what two samples of the counters look like on
// a screen of a given size. Pure: no terminal, no session, no clock reads
// (each sample carries the time it was taken), so that the full screen, the
// batch output and the tests all see the same lines for the same input.
#pragma once

#include <time.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "migwatch/model/session.h"

namespace migwatch::top {

/// An order of the process and VM lists: the key that selects it on screen,
/// its name in --sort and `View::sort`, and how the key help shows it.
struct SortKey {
  int key;
  const char* name;
  const char* help;
};

/// "migrations": most migrations in the interval first, processes and VMs
/// that did not move left out (ties: larger total, then name). "total": the
/// largest total since the start first (ties: name). "name": by name. The
/// last two list every name seen since the start.
inline constexpr SortKey kSortKeys[] = {
    {'m', "migrations", "migrations/s"},
    {'t', "total", "total since start"},
    {'n', "name", "name"},
};

/// The counters at one instant, with the time they were read.
struct Sample {
  std::chrono::steady_clock::time_point at;  ///< the rates are per second between two of these
  time_t wall = 0;                           ///< the same instant for the title and live migrations' ages
  CounterSnapshot counters;
  AttributionTotals totals;
  QemuState qemu;
};

/// The parts of `snapshot` that top shows, taken at `at` (`wall` on the
/// wall clock).
Sample MakeSample(Snapshot snapshot, std::chrono::steady_clock::time_point at, time_t wall);

/// One row of a table. `order` is where it goes among the rows shown, so
/// that CPUs stay in CPU order even when only the busiest fit.
struct Row {
  std::string text;
  size_t order;
};

/// A table: its column header and its rows, most important first.
struct Section {
  std::string header;
  std::vector<Row> rows;
};

/// Fits the sections into `height` lines (0: no limit). Each section that
/// fits gets its header and one row (or "(none)") first, in turn; the lines
/// left go to further rows, one per section in turn. A section cut short
/// says how many of its rows it shows. Sections after the first one that
/// does not fit are left out.
std::vector<std::string> Layout(const std::vector<Section>& sections, size_t height);

/// How the lines are shown.
struct View {
  std::string sort;          ///< the name of one of kSortKeys
  size_t width = 0;          ///< 0: lines are not cut
  size_t height = 0;         ///< 0: every row is shown
  bool interactive = false;  ///< the third line lists the keys rather than naming the sort
};

/// The view of the interval from `before` to `now`: a title with the host's
/// migrations per second, the rates per reason, the sort, then the tables
/// of CPUs (busiest stopper first), stopper requesters, processes, VMs and
/// running QEMU live migrations. Every rate and stopper share is over the
/// interval, taken as at least 1 ms. Never more than `view.height` lines,
/// none wider than `view.width`.
std::vector<std::string> Render(const Sample& before, const Sample& now, const View& view);

/// What the screen shows until a second sample makes an interval.
std::string WaitingTitle(double interval_seconds);

}  // namespace migwatch::top

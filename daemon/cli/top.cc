// migwatch top: a live view of migrations and stopper cost, like top(1).
//
// Every refresh shows the rates between the last two samples of the
// counters. This file runs the session, takes the samples and shows the
// lines top_view renders: on a curses screen that follows the keys, or as
// plain text reports (--batch, or stdout not a terminal).
#include <curses.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "migwatch/cli/commands.h"
#include "migwatch/cli/process.h"
#include "migwatch/cli/top_view.h"
#include "migwatch/model/session.h"

namespace migwatch {
namespace {

using Clock = std::chrono::steady_clock;
using top::Render;
using top::Sample;
using top::View;

// Once an interval, so that the processes that ended leave the process map
// (a snapshot only reads it).
Sample TakeSample(Session& session) {
  session.Sweep();
  const Clock::time_point at = Clock::now();
  const time_t wall = time(nullptr);
  return top::MakeSample(session.TakeSnapshot(), at, wall);
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
        Draw({top::WaitingTitle(options.interval_seconds).substr(0, width)});
      if (options.iterations && refreshes >= options.iterations) break;
    }
    const int ch = getch();
    if (ch == 'q' || ch == 'Q' || StopRequested()) break;
    for (const auto& k : top::kSortKeys) {
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

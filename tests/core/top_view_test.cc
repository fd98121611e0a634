// The text of `migwatch top` from hand-made snapshots: which rows lead each
// table, the rates and stopper shares computed from two samples, and the
// fit to the screen. Every expected value is worked out from the numbers
// below, so a change of the arithmetic or of the columns shows here without
// a kernel or a terminal.
#include "migwatch/cli/top_view.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <time.h>

#include <chrono>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace migwatch::top {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string S(size_t n) { return std::string(n, ' '); }

std::vector<std::string> Fields(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  for (std::string f; in >> f;) fields.push_back(f);
  return fields;
}

// The rows of the table whose header starts with `header`, up to the blank
// line that ends it.
std::vector<std::string> Rows(const std::vector<std::string>& lines, const std::string& header) {
  size_t i = 0;
  while (i < lines.size() && lines[i].rfind(header, 0) != 0) ++i;
  std::vector<std::string> rows;
  for (++i; i < lines.size() && !lines[i].empty(); ++i) rows.push_back(lines[i]);
  return rows;
}

std::string FirstField(const std::string& line) { return Fields(line).at(0); }

std::vector<std::string> Names(const std::vector<std::string>& rows) {
  std::vector<std::string> names;
  for (const auto& r : rows) names.push_back(FirstField(r));
  return names;
}

// The column headers, spelled out: the widths are part of what scripts
// reading --batch output rely on.
const std::string kCpuHeader =
    "  CPU" + S(7) + "IN/s" + S(6) + "OUT/s" + S(2) + "MIGRATION/N%" + S(4) + "RUNS/s" + S(2) + "TOP WORK";
const std::string kRequesterHeader = "STOPPER REQUESTER" + S(5) + "STOPPER%" + S(4) + "RUNS/s" + S(2) + "AFFINITY/s";
const std::string kProcessHeader = "PROCESS" + S(15) + "MIGRATIONS/s" + S(8) + "TOTAL" + S(2) + "MAIN REASON";
const std::string kVmHeader =
    "VM" + S(20) + "MIGRATIONS/s" + S(8) + "TOTAL" + S(2) + "STOPPER%" + S(2) + "MAIN REASON";
const std::string kLiveHeader = "QEMU LIVE MIGRATION" + S(2) + "SIDE" + S(10) + "THREADS" + S(4) + "RUNNING";

// 13:04:05 UTC on the first day of 1970.
constexpr time_t kWall = 13 * 3600 + 4 * 60 + 5;
const std::chrono::steady_clock::time_point kStart = std::chrono::steady_clock::time_point() + seconds(100);

class TopView : public ::testing::Test {
 protected:
  void SetUp() override {
    // The title shows local time.
    setenv("TZ", "UTC", 1);
    tzset();
  }

  // Two samples 2.5 s apart. In that interval:
  //   host:      30 wakeups, 30 load balances, 5 execs (65: 26/s)
  //   CPU 0:     25 in, 5 out, its stopper idle
  //   CPU 1:     5 in, 25 out, its stopper ran 10 times for 75 ms (3% of
  //              2.5 s): 60 ms of affinity work, 15 ms of watchdog
  //   processes: beta 20 wakeups + 30 load balances (total 100), alpha 10
  //              wakeups (total 110), delta new with 5 execs, gamma still
  //              at its 10 affinity moves
  //   requesters: kvm asked for all of CPU 1's stopper runs and made 5
  //              affinity changes; idle did nothing more
  //   VMs:       web1 5 wakeups + 15 affinity moves (total 25), 25 ms of
  //              stopper time
  //   QEMU:      web1 is the source of a live migration for 90 s, with 3
  //              threads; an older one of db2 has ended
  void MakeInterval() {
    Snapshot b;
    b.counters.host.migrations[MW_REASON_WAKEUP] = 5000;
    b.counters.host.migrations[MW_REASON_LOAD_BALANCE] = 700;
    b.counters.host.migrations[MW_REASON_AFFINITY] = 3;
    b.counters.cpus.resize(2);
    b.counters.cpu_moves = {{100, 200}, {300, 400}};
    b.counters.cpus[0].stopper_run_ns = 2'000'000'000;
    b.counters.cpus[0].stopper_runs = 7;
    b.counters.cpus[0].stopper_work_ns[MW_WORK_WATCHDOG] = 2'000'000'000;
    b.counters.cpus[1].stopper_run_ns = 7'000'000'000;
    b.counters.cpus[1].stopper_runs = 40;
    // More watchdog than affinity work since the start: the interval's
    // growth, not the totals, names the top work.
    b.counters.cpus[1].stopper_work_ns[MW_WORK_AFFINITY] = 1'000'000'000;
    b.counters.cpus[1].stopper_work_ns[MW_WORK_WATCHDOG] = 6'000'000'000;
    b.attribution.process_migrations["alpha"][MW_REASON_WAKEUP] = 100;
    b.attribution.process_migrations["beta"][MW_REASON_LOAD_BALANCE] = 50;
    b.attribution.process_migrations["gamma"][MW_REASON_AFFINITY] = 10;
    b.attribution.requester_stopper_ns = {{"kvm", 1'000'000'000}, {"idle", 500}};
    b.attribution.requester_stopper_runs = {{"kvm", 40}, {"idle", 1}};
    b.attribution.affinity_changes = {{"kvm", 7}};
    b.attribution.vm_migrations["web1"][MW_REASON_WAKEUP] = 5;

    Snapshot n = b;
    n.counters.host.migrations[MW_REASON_WAKEUP] += 30;
    n.counters.host.migrations[MW_REASON_LOAD_BALANCE] += 30;
    n.counters.host.migrations[MW_REASON_EXEC] += 5;
    n.counters.cpu_moves = {{125, 205}, {305, 425}};
    n.counters.cpus[1].stopper_run_ns += 75'000'000;
    n.counters.cpus[1].stopper_runs += 10;
    n.counters.cpus[1].stopper_work_ns[MW_WORK_AFFINITY] += 60'000'000;
    n.counters.cpus[1].stopper_work_ns[MW_WORK_WATCHDOG] += 15'000'000;
    n.attribution.process_migrations["alpha"][MW_REASON_WAKEUP] += 10;
    n.attribution.process_migrations["beta"][MW_REASON_WAKEUP] += 20;
    n.attribution.process_migrations["beta"][MW_REASON_LOAD_BALANCE] += 30;
    n.attribution.process_migrations["delta"][MW_REASON_EXEC] = 5;
    n.attribution.requester_stopper_ns["kvm"] += 75'000'000;
    n.attribution.requester_stopper_runs["kvm"] += 10;
    n.attribution.affinity_changes["kvm"] += 5;
    n.attribution.vm_migrations["web1"][MW_REASON_WAKEUP] += 5;
    n.attribution.vm_migrations["web1"][MW_REASON_AFFINITY] += 15;
    n.attribution.vm_stopper_ns["web1"] = 25'000'000;
    n.qemu.sides.push_back({"db2", MigrationSide::kDestination, false, 0, 0});
    n.qemu.sides.push_back({"web1", MigrationSide::kSource, true, static_cast<double>(kWall - 90), 3});

    before_ = MakeSample(std::move(b), kStart, kWall - 2);
    now_ = MakeSample(std::move(n), kStart + milliseconds(2500), kWall);
  }

  std::vector<std::string> Lines(const std::string& sort, size_t width = 0, size_t height = 0,
                                 bool interactive = false) {
    return Render(before_, now_, View{sort, width, height, interactive});
  }

  Sample before_;
  Sample now_;
};

TEST_F(TopView, TitleRatesArePerSecondOfTheInterval) {
  MakeInterval();
  const auto lines = Lines("migrations");
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[0], "migwatch top - 13:04:05 - 26 migrations/s over 2.5s");
  // 30 / 2.5 = 12 twice; 5 / 2.5 = 2, shown with a decimal as below 10/s.
  EXPECT_EQ(lines[1], "reasons/s: wakeup 12 load_balance 12 exec 2.0");
  EXPECT_EQ(lines[2], "processes and VMs sorted by migrations");
  EXPECT_EQ(lines[3], "");
}

TEST_F(TopView, MostMigrationsInTheIntervalLeadTheProcesses) {
  MakeInterval();
  const auto rows = Rows(Lines("migrations"), kProcessHeader);
  // beta moved 50 times (20/s), alpha 10 (4/s), delta 5 (2/s); gamma did
  // not move and is left out, though its total is larger than delta's.
  ASSERT_EQ(Names(rows), (std::vector<std::string>{"beta", "alpha", "delta"}));
  // Name to 20 columns, rate to 13, total to 12, then the main reason:
  // 30 of beta's 50 moves were load balances.
  EXPECT_EQ(rows[0], "beta" + S(16) + S(1) + S(11) + "20" + S(1) + S(9) + "100" + S(2) + "load_balance 60%");
  EXPECT_EQ(Fields(rows[1]), (std::vector<std::string>{"alpha", "4.0", "110", "wakeup", "100%"}));
  EXPECT_EQ(Fields(rows[2]), (std::vector<std::string>{"delta", "2.0", "5", "exec", "100%"}));
}

TEST_F(TopView, EachSortKeyReordersTheProcesses) {
  MakeInterval();
  ASSERT_EQ(std::size(kSortKeys), 3u);
  EXPECT_EQ(kSortKeys[0].key, 'm');
  EXPECT_STREQ(kSortKeys[0].name, "migrations");
  EXPECT_EQ(kSortKeys[1].key, 't');
  EXPECT_STREQ(kSortKeys[1].name, "total");
  EXPECT_EQ(kSortKeys[2].key, 'n');
  EXPECT_STREQ(kSortKeys[2].name, "name");

  // Totals since the start: alpha 110, beta 100, gamma 10, delta 5; every
  // process seen is listed, moved in the interval or not.
  const auto by_total = Lines("total");
  EXPECT_EQ(Names(Rows(by_total, kProcessHeader)), (std::vector<std::string>{"alpha", "beta", "gamma", "delta"}));
  EXPECT_EQ(by_total[2], "processes and VMs sorted by total");
  const auto gamma = Fields(Rows(by_total, kProcessHeader)[2]);
  EXPECT_EQ(gamma, (std::vector<std::string>{"gamma", "0", "10", "-"}));

  EXPECT_EQ(Names(Rows(Lines("name"), kProcessHeader)), (std::vector<std::string>{"alpha", "beta", "delta", "gamma"}));

  // On screen the third line lists the keys and stars the current one.
  EXPECT_EQ(Lines("total", 0, 0, true)[2],
            "keys: m migrations/s, t total since start*, n name, q quit (* = current sort)");
}

TEST_F(TopView, StopperShareOfEachCpuComesFromTheTwoSamples) {
  MakeInterval();
  const auto rows = Rows(Lines("migrations"), kCpuHeader);
  ASSERT_EQ(rows.size(), 2u);
  // CPU order, though CPU 1 is the busier. CPU 0: 25 in (10/s), 5 out
  // (2/s), its stopper idle in the interval however long it ran before.
  EXPECT_EQ(Fields(rows[0]), (std::vector<std::string>{"0", "10", "2.0", "0.00%", "0", "-"}));
  // CPU 1: 75 ms of 2.5 s is 3%, 10 runs are 4/s, and affinity work grew
  // most (60 ms against 15 ms).
  EXPECT_EQ(rows[1], "    1" + S(1) + S(7) + "2.0" + S(1) + S(8) + "10" + S(1) + S(8) + "3.00%" + S(1) + S(6) + "4.0" +
                         S(2) + "affinity");
}

TEST_F(TopView, RequestersVmsAndLiveMigrations) {
  MakeInterval();
  const auto lines = Lines("migrations");
  // idle asked for nothing in the interval.
  const auto requesters = Rows(lines, kRequesterHeader);
  ASSERT_EQ(requesters.size(), 1u);
  EXPECT_EQ(Fields(requesters[0]), (std::vector<std::string>{"kvm", "3.00%", "4.0", "2.0"}));
  // 20 moves are 8/s; 25 ms of stopper time is 1% of 2.5 s; 15 of the 20
  // were affinity moves.
  const auto vms = Rows(lines, kVmHeader);
  ASSERT_EQ(vms.size(), 1u);
  EXPECT_EQ(Fields(vms[0]), (std::vector<std::string>{"web1", "8.0", "25", "1.00%", "affinity", "75%"}));
  // Only the running migration, with its age at the time of the sample.
  const auto live = Rows(lines, kLiveHeader);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0], "web1" + S(16) + S(1) + "source" + S(6) + S(1) + S(7) + "3" + S(1) + S(7) + "90s");
}

TEST_F(TopView, LayoutFitsTheHeight) {
  MakeInterval();
  // The title takes 4 lines. With 8 more, the CPU, requester and process
  // tables get their header and one row each, with a blank line between
  // them (2 + 3 + 3); the VM and live-migration tables do not fit.
  const auto twelve = Lines("migrations", 0, 12);
  ASSERT_EQ(twelve.size(), 12u);
  EXPECT_EQ(twelve[4], kCpuHeader + "   (1 of 2)");
  EXPECT_EQ(FirstField(twelve[5]), "1");  // the busiest CPU
  EXPECT_EQ(twelve[6], "");
  EXPECT_EQ(twelve[7], kRequesterHeader);  // all of its one row
  EXPECT_EQ(FirstField(twelve[8]), "kvm");
  EXPECT_EQ(twelve[9], "");
  EXPECT_EQ(twelve[10], kProcessHeader + "   (1 of 3)");
  EXPECT_EQ(FirstField(twelve[11]), "beta");

  // One line more goes to the first table that has rows left: both CPUs,
  // in CPU order.
  const auto thirteen = Lines("migrations", 0, 13);
  ASSERT_EQ(thirteen.size(), 13u);
  EXPECT_EQ(thirteen[4], kCpuHeader);
  EXPECT_EQ(FirstField(thirteen[5]), "0");
  EXPECT_EQ(FirstField(thirteen[6]), "1");
  EXPECT_EQ(thirteen[11], kProcessHeader + "   (1 of 3)");

  // The next skips the requesters, which are all shown, for the processes.
  const auto fourteen = Lines("migrations", 0, 14);
  ASSERT_EQ(fourteen.size(), 14u);
  EXPECT_EQ(fourteen[11], kProcessHeader + "   (2 of 3)");
  EXPECT_EQ(FirstField(fourteen[13]), "alpha");

  // Unlimited: 4 + CPU 3 + requesters 3 + processes 5 + VMs 3 + live 3.
  EXPECT_EQ(Lines("migrations").size(), 21u);

  // No height, however small, gets more lines; no width wider ones.
  for (size_t height = 1; height <= 30; ++height) {
    for (size_t width : {1, 10, 40, 200}) {
      const auto lines = Lines("total", width, height);
      EXPECT_LE(lines.size(), height) << height;
      for (const auto& l : lines) EXPECT_LE(l.size(), width) << height << " " << width << " " << l;
    }
  }
  EXPECT_EQ(Lines("migrations", 0, 3), (std::vector<std::string>{"migwatch top - 13:04:05 - 26 migrations/s over 2.5s",
                                                                  "reasons/s: wakeup 12 load_balance 12 exec 2.0",
                                                                  "processes and VMs sorted by migrations"}));
  EXPECT_EQ(Lines("migrations", 40, 1)[0], "migwatch top - 13:04:05 - 26 migrations/");
}

TEST_F(TopView, EmptyIntervalShowsNone) {
  // Nothing read at all, and no time between the samples: the interval is
  // taken as 1 ms rather than dividing by zero.
  before_ = MakeSample(Snapshot{}, kStart, kWall);
  now_ = MakeSample(Snapshot{}, kStart, kWall);
  EXPECT_EQ(Lines("migrations"), (std::vector<std::string>{
                                     "migwatch top - 13:04:05 - 0 migrations/s over 0.0s",
                                     "reasons/s: none",
                                     "processes and VMs sorted by migrations",
                                     "",
                                     kCpuHeader,
                                     "(none)",
                                     "",
                                     kRequesterHeader,
                                     "(none)",
                                     "",
                                     kProcessHeader,
                                     "(none)",
                                     "",
                                     kVmHeader,
                                     "(none)",
                                     "",
                                     kLiveHeader,
                                     "(none)",
                                 }));
}

TEST_F(TopView, NothingMovedInTheInterval) {
  // The same counts one second apart: no process moved, so none is listed
  // by migrations; the CPUs are still there, at zero.
  MakeInterval();
  Snapshot same;
  same.counters = now_.counters;
  same.attribution = now_.totals;
  before_ = MakeSample(same, kStart, kWall - 1);
  now_ = MakeSample(same, kStart + seconds(1), kWall);
  const auto lines = Lines("migrations");
  EXPECT_EQ(lines[0], "migwatch top - 13:04:05 - 0 migrations/s over 1.0s");
  EXPECT_EQ(lines[1], "reasons/s: none");
  EXPECT_EQ(Fields(Rows(lines, kCpuHeader).at(1)), (std::vector<std::string>{"1", "0", "0", "0.00%", "0", "-"}));
  EXPECT_EQ(Rows(lines, kRequesterHeader), (std::vector<std::string>{"(none)"}));
  EXPECT_EQ(Rows(lines, kProcessHeader), (std::vector<std::string>{"(none)"}));
  EXPECT_EQ(Rows(lines, kVmHeader), (std::vector<std::string>{"(none)"}));
  // Sorted by total, every process seen is listed, at 0/s.
  EXPECT_EQ(Names(Rows(Lines("total"), kProcessHeader)), (std::vector<std::string>{"alpha", "beta", "gamma", "delta"}));
}

TEST(TopViewText, WaitingTitle) { EXPECT_EQ(WaitingTitle(0.5), "migwatch top - first view in 0.5s"); }

}  // namespace
}  // namespace migwatch::top

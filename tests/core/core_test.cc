// The daemon's pieces that need no root: CPU lists and topology, log
// formats, label names.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string_view>

#include "migwatch/kernel/kernel_info.h"
#include "migwatch/kernel/maps.h"
#include "migwatch/model/labels.h"
#include "migwatch/cli/logging.h"

namespace migwatch {
namespace {

namespace fs = std::filesystem;

TEST(ParseCpuList, RangesAndSingles) {
  EXPECT_EQ(ParseCpuList("0-3,8,10-11\n"), (std::vector<unsigned>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(ParseCpuList("5"), (std::vector<unsigned>{5}));
  EXPECT_EQ(ParseCpuList(""), (std::vector<unsigned>{}));
}

TEST(ParseCpuList, MalformedIsRejected) {
  for (const char* bad : {"a", "1-", "-1", "3-1", "1,,2", "1-2-3", "99999999", "0-70000"})
    EXPECT_FALSE(ParseCpuList(bad)) << bad;
}

class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("mw-sysfs-" + std::to_string(getpid()));
    fs::create_directories(root_ / "devices/system/node");
  }
  void TearDown() override { fs::remove_all(root_); }
  void Node(int id, const std::string& cpulist) {
    fs::path dir = root_ / "devices/system/node" / ("node" + std::to_string(id));
    fs::create_directories(dir);
    std::ofstream(dir / "cpulist") << cpulist << "\n";
  }
  fs::path root_;
};

TEST_F(FakeSysfs, TwoNodesMapEveryCpu) {
  Node(0, "0-1,4-5");
  Node(1, "2-3,6-7");
  fs::create_directories(root_ / "devices/system/node/possible");  // not a node directory
  CpuTopology topo = ReadCpuTopology(root_);
  EXPECT_EQ(topo.nr_nodes, 2u);
  EXPECT_EQ(topo.node_of_cpu, (std::vector<uint16_t>{0, 0, 1, 1, 0, 0, 1, 1}));
}

TEST_F(FakeSysfs, NoNodesIsOneNode) {
  CpuTopology topo = ReadCpuTopology(root_);
  EXPECT_EQ(topo.nr_nodes, 1u);
  EXPECT_TRUE(topo.node_of_cpu.empty());
}

TEST_F(FakeSysfs, OnlineCpusFromTheirList) {
  fs::create_directories(root_ / "devices/system/cpu");
  std::ofstream(root_ / "devices/system/cpu/online") << "0-1,4\n";
  EXPECT_EQ(ReadOnlineCpus(6, root_), (std::vector<bool>{true, true, false, false, true, false}));
  // A CPU beyond the possible ones (a list from another machine) is left out.
  EXPECT_EQ(ReadOnlineCpus(2, root_), (std::vector<bool>{true, true}));
}

TEST_F(FakeSysfs, PresentCpusFromTheirOwnList) {
  fs::create_directories(root_ / "devices/system/cpu");
  std::ofstream(root_ / "devices/system/cpu/online") << "0\n";
  std::ofstream(root_ / "devices/system/cpu/present") << "0-2\n";
  EXPECT_EQ(ReadPresentCpus(5, root_), (std::vector<bool>{true, true, true, false, false}));
  EXPECT_EQ(ReadOnlineCpus(5, root_), (std::vector<bool>{true, false, false, false, false}));
}

TEST_F(FakeSysfs, UnreadableOnlineListCountsEveryCpuOnline) {
  EXPECT_EQ(ReadOnlineCpus(3, root_), (std::vector<bool>{true, true, true}));
}

TEST(CpuShown, OnlineOrCountedSomething) {
  CounterSnapshot s;
  s.online = {true, false, false, false};
  s.cpus.assign(4, mw_cpu_counters{});
  s.cpu_moves.assign(4, mw_cpu_moves{});
  s.cpu_moves[2].out = 3;   // went offline after moving tasks off
  s.cpus[3].stopper_runs = 1;  // its stopper ran during a teardown
  EXPECT_TRUE(CpuShown(s, 0));
  EXPECT_FALSE(CpuShown(s, 1));  // possible, never online, nothing counted
  EXPECT_TRUE(CpuShown(s, 2));
  EXPECT_TRUE(CpuShown(s, 3));
  EXPECT_FALSE(CpuShown(s, 4));  // beyond what was read
}

TEST(ReadCpuTopology, ThisMachineCoversItsOnlineCpus) {
  CpuTopology topo = ReadCpuTopology();
  EXPECT_GE(topo.nr_nodes, 1u);
  EXPECT_GE(topo.node_of_cpu.size(), static_cast<size_t>(sysconf(_SC_NPROCESSORS_ONLN)));
}

TEST(Labels, NamesRoundTripAndOutOfRangeIsOther) {
  for (int r = 0; r < MW_REASON_COUNT; ++r) EXPECT_EQ(ReasonFromName(ReasonName(r)), static_cast<mw_reason>(r));
  EXPECT_EQ(ReasonName(MW_REASON_COUNT), "other");
  EXPECT_EQ(ReasonName(-1), "other");
  EXPECT_EQ(WorkName(MW_WORK_WATCHDOG), "watchdog");
  EXPECT_FALSE(ReasonFromName("bogus"));
}

// Every drop kind has a label value of its own: a name missing from the
// table would be an empty `buffer` label.
TEST(Labels, EveryDropKindHasADistinctName) {
  std::set<std::string_view> names;
  for (int d = 0; d < MW_DROP_COUNT; ++d) {
    EXPECT_FALSE(DropName(d).empty()) << "drop kind " << d;
    names.insert(DropName(d));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(MW_DROP_COUNT));
  EXPECT_EQ(DropName(MW_DROP_EXITING_MAP_FULL), "exiting_map_full");
}

// Captures what the default logger writes to stderr.
std::string LogLine(const std::string& format, const std::string& message) {
  std::string error;
  EXPECT_TRUE(SetUpLogging("info", format, &error)) << error;
  std::fflush(stderr);
  char path[] = "/tmp/mw-log-XXXXXX";
  int fd = mkstemp(path);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  spdlog::info("{}", message);
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  unlink(path);
  return line;
}

TEST(Logging, LogfmtQuotesAndEscapesTheMessage) {
  std::string line = LogLine("logfmt", "probe \"x\" failed\nnext");
  EXPECT_NE(line.find(" level=info msg=\"probe \\\"x\\\" failed\\nnext\""), std::string::npos) << line;
  EXPECT_EQ(line.rfind("ts=", 0), 0u) << line;
}

TEST(Logging, JsonIsOneValidObjectPerLine) {
  std::string line = LogLine("json", "tab\there \"q\"");
  EXPECT_EQ(line.front(), '{');
  EXPECT_EQ(line.back(), '}');
  EXPECT_NE(line.find("\"level\":\"info\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"msg\":\"tab\\there \\\"q\\\"\""), std::string::npos) << line;
}

TEST(Logging, UnknownLevelOrFormatIsAnError) {
  std::string error;
  EXPECT_FALSE(SetUpLogging("loud", "logfmt", &error));
  EXPECT_NE(error.find("loud"), std::string::npos);
  EXPECT_FALSE(SetUpLogging("info", "xml", &error));
  EXPECT_NE(error.find("xml"), std::string::npos);
  EXPECT_TRUE(SetUpLogging("off", "json", &error));
}

// One process as read: `affinity` moves in its entry, `live` in its
// threads' se.nr_migrations.
ProcessEntry ReadEntry(uint64_t affinity, uint64_t live) {
  ProcessEntry entry;
  entry.key.tgid = 42;
  entry.key.start_ns = 7;
  entry.stats.migrations[MW_REASON_AFFINITY] = affinity;
  entry.live_migrations = live;
  return entry;
}

// `affinity` moves unsettled (held or deferred) for the process of `entry`.
PendingMoves Unsettled(const ProcessEntry& entry, uint64_t affinity) {
  PendingMoves pending;
  pending.unsettled[entry.key].migrations[MW_REASON_AFFINITY] = affinity;
  return pending;
}

// A stopper run's first move reaches its process's entry when the run ends
// (abi.h, mw_deferred_move); the kernel counts it when it is made. A
// reading in between must still give the kernel's total.
TEST(UnsettledCounts, AMovePendingAtTheReadingIsInTheProcessTotal) {
  std::vector<ProcessEntry> entries{ReadEntry(10, 16)};  // 10 in the entry, 1 pending, 5 at wakeups
  PendingMoves before = Unsettled(entries[0], 1), after = before;
  AddUnsettled(after, &before, &entries);
  ASSERT_EQ(entries.size(), 1u);
  CountWakeups(&entries[0], 0, ProcessBaseline{});
  EXPECT_EQ(entries[0].stats.migrations[MW_REASON_AFFINITY], 11u);
  EXPECT_EQ(entries[0].stats.migrations[MW_REASON_WAKEUP], 5u);
  EXPECT_EQ(TotalMigrations(entries[0].stats), 16u);
}

// The same move settled into the entry between the two readings around the
// process map, with the map read after it: in the entry, not pending after.
// Counted once; the wakeups may fall short until the next reading.
TEST(UnsettledCounts, AMoveSettledBetweenTheReadingsIsNeverCountedTwice) {
  std::vector<ProcessEntry> entries{ReadEntry(11, 16)};
  PendingMoves before = Unsettled(entries[0], 1), after;
  AddUnsettled(after, &before, &entries);
  ASSERT_EQ(entries.size(), 1u);
  entries[0].pending_others = before.others[entries[0].key];
  CountWakeups(&entries[0], 0, ProcessBaseline{});
  EXPECT_EQ(entries[0].stats.migrations[MW_REASON_AFFINITY], 11u);
  EXPECT_LE(TotalMigrations(entries[0].stats), 16u);
}

// A move and charges on their way to the process map, their change counter
// odd: the map read before may have them already, so a reading leaves them
// out (missed until the next reading) rather than count them twice.
TEST(UnsettledCounts, WhatIsOnItsWayToTheProcessMapIsLeftOut) {
  const mw_process_key moved{.tgid = 42, .pad = 0, .start_ns = 7}, requester{.tgid = 43, .pad = 0, .start_ns = 8};
  mw_stopper_request request{};
  request.deferred.process = moved;
  request.deferred.task = 0xffff0000;
  request.deferred.reason = MW_REASON_AFFINITY;
  request.deferred.counted = 1;
  request.charges.process = requester;
  request.charges.held = 1;
  request.charges.counts.affinity_changes = 5;
  request.charges.counts.migrations[MW_REASON_AFFINITY] = 2;

  for (const uint64_t deferred_changes : {4u, 5u})
    for (const uint64_t flushes : {6u, 7u}) {
      SCOPED_TRACE(testing::Message() << "changes " << deferred_changes << ", flushes " << flushes);
      request.deferred.changes = deferred_changes;
      request.charges.flushes = flushes;
      PendingMoves pending;
      AddPending(request, &pending);
      EXPECT_EQ(pending.changes, (std::vector<uint64_t>{deferred_changes, flushes}));
      const bool move_in = deferred_changes % 2 == 0, charges_in = flushes % 2 == 0;
      EXPECT_EQ(pending.unsettled.count(moved), move_in ? 1u : 0u);
      if (move_in) {
        EXPECT_EQ(pending.unsettled[moved].migrations[MW_REASON_AFFINITY], 1u);
      }
      EXPECT_EQ(pending.unsettled.count(requester), charges_in ? 1u : 0u);
      if (charges_in) {
        EXPECT_EQ(pending.unsettled[requester].affinity_changes, 5u);
        EXPECT_EQ(pending.unsettled[requester].migrations[MW_REASON_AFFINITY], 2u);
      }
    }
}

// A CPU holds a process's charges until another process's take their place
// (abi.h, mw_pending_charges). Held when the session takes its baseline,
// they are in the kernel's total already: the baseline counts them in its
// other reasons too, or every later reading derives one wakeup too few.
TEST(Baseline, CountsWhatWasUnsettledWhenTaken) {
  std::vector<ProcessEntry> entries{ReadEntry(3, 10)};  // 3 in the entry, 1 held, 6 at wakeups
  PendingMoves before = Unsettled(entries[0], 1), after = before;
  AddUnsettled(after, &before, &entries);
  CountWakeups(&entries[0], 0, ProcessBaseline{});
  const ProcessBaseline baseline = BaselineOf(entries[0], /*live_after=*/10);
  EXPECT_EQ(baseline.total, 10u);
  EXPECT_EQ(baseline.others, 4u);

  // Later: the charges flushed to the entry, and two moves at wakeups.
  ProcessEntry later = ReadEntry(4, 12);
  CountWakeups(&later, 0, baseline);
  EXPECT_EQ(later.stats.migrations[MW_REASON_WAKEUP], 2u);
}

// A thread of the process moved while the baseline was read: the move is in
// the total however the process map was read, so later wakeups can only
// fall short.
TEST(Baseline, AMoveDuringTheReadingIsInTheTotal) {
  ProcessEntry entry = ReadEntry(0, 10);
  CountWakeups(&entry, 0, ProcessBaseline{});
  const ProcessBaseline baseline = BaselineOf(entry, /*live_after=*/11);
  EXPECT_EQ(baseline.total, 11u);
  EXPECT_EQ(baseline.others, 0u);
}

}  // namespace
}  // namespace migwatch

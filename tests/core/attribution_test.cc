// Attribution as a pure fold: readings of the process map in, label totals
// out, with the identities from a table instead of /proc. No root, no BPF.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>

#include "migwatch/model/attribution.h"

namespace migwatch {
namespace {

// Identities by tgid, as a test sets them; unknown ones from their comm.
class TableDirectory : public ProcessDirectory {
 public:
  ProcessIdentity Resolve(const mw_process_key& key, const std::string& comm, uint32_t flags) override {
    auto it = identities.find(key.tgid);
    return it != identities.end() ? it->second : IdentityFromComm(key, comm, flags);
  }
  ProcessIdentity ResolvePid(uint32_t tgid, const std::string& comm) override {
    return Resolve(mw_process_key{tgid, 0, 0}, comm, 0);
  }
  std::map<uint32_t, ProcessIdentity> identities;
};

mw_process_key Key(uint32_t tgid, uint64_t start_ns = 1000) { return mw_process_key{tgid, 0, start_ns}; }

// One reading of a process: its entry with these counts.
ProcessEntry Reading(const mw_process_key& key, const char* comm, std::map<int, uint64_t> migrations,
                     uint64_t stopper_moved_ns = 0) {
  ProcessEntry e;
  e.key = key;
  snprintf(e.stats.comm, sizeof(e.stats.comm), "%s", comm);
  for (auto [reason, n] : migrations) e.stats.migrations[reason] = n;
  e.stats.stopper_moved_ns = stopper_moved_ns;
  return e;
}

uint64_t Moved(const AttributionTotals& t, const std::string& label, int reason) {
  auto it = t.process_migrations.find(label);
  return it == t.process_migrations.end() ? 0 : it->second[reason];
}

uint64_t AllReasons(const ReasonCounts& counts) {
  uint64_t sum = 0;
  for (uint64_t n : counts) sum += n;
  return sum;
}

// What a Prometheus server sees of migwatch_process_migrations_total when it
// scrapes the totals: each series may only grow while it lasts, and what all
// series counted, those that ended included, is what the processes did.
class Scraper {
 public:
  // As Session::TakeSnapshot(): the totals, then Relabel().
  void Scrape(Attribution& a, LabelFolder::Clock::time_point now) {
    Read(a.totals());
    a.Relabel(now);
  }
  /// Every migration counted by some series, ended or live.
  uint64_t Counted() const {
    uint64_t sum = ended_;
    for (const auto& [label, value] : last_) sum += value;
    return sum;
  }
  bool Shows(const std::string& label) const { return last_.count(label) != 0; }
  uint64_t Value(const std::string& label) const {
    auto it = last_.find(label);
    return it == last_.end() ? 0 : it->second;
  }
  /// How many times a series of this label ended.
  int Ends(const std::string& label) const {
    auto it = ends_.find(label);
    return it == ends_.end() ? 0 : it->second;
  }
  int AllEnds() const {
    int sum = 0;
    for (const auto& [label, n] : ends_) sum += n;
    return sum;
  }

 private:
  void Read(const AttributionTotals& t) {
    for (auto it = last_.begin(); it != last_.end();) {
      if (t.process_migrations.count(it->first)) {
        ++it;
        continue;
      }
      ended_ += it->second;  // the series ended at the value last scraped
      ++ends_[it->first];
      it = last_.erase(it);
    }
    for (const auto& [label, by_reason] : t.process_migrations) {
      const uint64_t value = AllReasons(by_reason);
      auto [it, fresh] = last_.try_emplace(label, value);
      if (!fresh) {
        EXPECT_GE(value, it->second) << "the series of " << label << " went down";
        it->second = value;
      }
    }
  }

  std::map<std::string, uint64_t> last_;
  std::map<std::string, int> ends_;
  uint64_t ended_ = 0;
};

// Processes that a test makes migrate, read as the process map would show
// them: one process per name, all its migrations load balancing.
class Processes {
 public:
  void Move(uint32_t tgid, const char* name, uint64_t migrations) {
    auto& p = by_tgid_[tgid];
    p.name = name;
    p.migrations += migrations;
  }
  std::vector<ProcessEntry> Readings() const {
    std::vector<ProcessEntry> entries;
    for (const auto& [tgid, p] : by_tgid_)
      entries.push_back(Reading(Key(tgid), p.name.c_str(), {{MW_REASON_LOAD_BALANCE, p.migrations}}));
    return entries;
  }
  uint64_t Of(uint32_t tgid) const { return by_tgid_.at(tgid).migrations; }
  uint64_t Total() const {
    uint64_t sum = 0;
    for (const auto& [tgid, p] : by_tgid_) sum += p.migrations;
    return sum;
  }

 private:
  struct Process {
    std::string name;
    uint64_t migrations = 0;
  };
  std::map<uint32_t, Process> by_tgid_;
};

// A host whose processes are read, folded and scraped every 15 s, under
// a label cap.
struct ScrapedHost {
  explicit ScrapedHost(size_t label_cap) : attribution(directory, label_cap, 20) {}
  void NextInterval() {
    now += std::chrono::seconds(15);
    attribution.Fold(processes.Readings(), {}, now);
    scraper.Scrape(attribution, now);
  }
  uint64_t Other() const { return Moved(attribution.totals(), "other", MW_REASON_LOAD_BALANCE); }

  TableDirectory directory;
  Attribution attribution;
  Processes processes;
  Scraper scraper;
  LabelFolder::Clock::time_point now{};
};

TEST(AttributionFold, GrowthIsChargedOnceWhateverTheNumberOfReadings) {
  TableDirectory directory;
  Attribution a(directory, 20, 20);
  a.Fold({Reading(Key(100), "storm", {{MW_REASON_AFFINITY, 5}}, 700)}, {});
  a.Fold({Reading(Key(100), "storm", {{MW_REASON_AFFINITY, 8}}, 900)}, {});
  a.Fold({Reading(Key(100), "storm", {{MW_REASON_AFFINITY, 8}}, 900)}, {});
  EXPECT_EQ(Moved(a.totals(), "storm", MW_REASON_AFFINITY), 8u);
  EXPECT_EQ(a.totals().process_stopper_ns.at("storm"), 900u);
}

TEST(AttributionFold, AReadingBelowAnEarlierOneIsNoGrowth) {
  // Wakeups derived while threads move may read short (CountWakeups): the
  // higher value stays the base, so nothing is counted twice.
  TableDirectory directory;
  Attribution a(directory, 20, 20);
  a.Fold({Reading(Key(100), "p", {{MW_REASON_WAKEUP, 10}})}, {});
  a.Fold({Reading(Key(100), "p", {{MW_REASON_WAKEUP, 9}})}, {});
  EXPECT_EQ(Moved(a.totals(), "p", MW_REASON_WAKEUP), 10u);
  a.Fold({Reading(Key(100), "p", {{MW_REASON_WAKEUP, 12}})}, {});
  EXPECT_EQ(Moved(a.totals(), "p", MW_REASON_WAKEUP), 12u);
}

TEST(AttributionFold, ARenameSplitsGrowthAtTheCountsItCarries) {
  TableDirectory directory;
  Attribution a(directory, 20, 20);
  a.Fold({Reading(Key(100), "old", {{MW_REASON_WAKEUP, 10}})}, {});
  NameChange rename;
  rename.key = Key(100);
  rename.comm = "new";
  rename.counts.migrations[MW_REASON_WAKEUP] = 14;
  a.AddNameChange(rename);
  // Delivered late: the reading already holds growth from after it.
  a.Fold({Reading(Key(100), "old", {{MW_REASON_WAKEUP, 20}})}, {});
  EXPECT_EQ(Moved(a.totals(), "old", MW_REASON_WAKEUP), 14u);
  EXPECT_EQ(Moved(a.totals(), "new", MW_REASON_WAKEUP), 6u);
}

TEST(AttributionFold, AnExecIntoQemuChargesLaterGrowthToItsVm) {
  TableDirectory directory;
  directory.identities[100] = {"bash", "", false};
  Attribution a(directory, 20, 20);
  a.Fold({Reading(Key(100), "bash", {{MW_REASON_EXEC, 1}})}, {});
  directory.identities[100] = {"qemu-system-x86", "guest1", false};
  NameChange exec;
  exec.key = Key(100);
  exec.comm = "qemu-system-x86";
  exec.exec = true;
  exec.counts.migrations[MW_REASON_EXEC] = 1;
  a.AddNameChange(exec);
  a.Fold({Reading(Key(100), "bash", {{MW_REASON_EXEC, 1}, {MW_REASON_AFFINITY, 30}}, 5000)}, {});
  const AttributionTotals& t = a.totals();
  EXPECT_EQ(Moved(t, "bash", MW_REASON_EXEC), 1u);
  EXPECT_EQ(Moved(t, "bash", MW_REASON_AFFINITY), 0u);
  EXPECT_EQ(Moved(t, "qemu-system-x86", MW_REASON_AFFINITY), 30u);
  ASSERT_TRUE(t.vm_migrations.count("guest1"));
  EXPECT_EQ(t.vm_migrations.at("guest1")[MW_REASON_AFFINITY], 30u);
  EXPECT_EQ(t.vm_migrations.at("guest1")[MW_REASON_EXEC], 0u);
  EXPECT_EQ(t.vm_stopper_ns.at("guest1"), 5000u);
}

TEST(AttributionFold, AProcessThatEndedKeepsItsTotalAndAReusedPidStartsAnew) {
  TableDirectory directory;
  Attribution a(directory, 20, 20);
  a.Fold({Reading(Key(100), "job", {{MW_REASON_LOAD_BALANCE, 5}})}, {});
  a.Fold({Reading(Key(100), "job", {{MW_REASON_LOAD_BALANCE, 7}})}, {Key(100)});
  a.Fold({}, {});
  EXPECT_EQ(Moved(a.totals(), "job", MW_REASON_LOAD_BALANCE), 7u);
  // Same pid, another start time: another process, counted from zero.
  a.Fold({Reading(Key(100, 2000), "job", {{MW_REASON_LOAD_BALANCE, 3}})}, {});
  EXPECT_EQ(Moved(a.totals(), "job", MW_REASON_LOAD_BALANCE), 10u);
}

TEST(AttributionFold, NamesBeyondTheCapCountUnderOther) {
  TableDirectory directory;
  Attribution a(directory, 2, 20);
  a.Fold({Reading(Key(1), "a", {{MW_REASON_WAKEUP, 1}}), Reading(Key(2), "b", {{MW_REASON_WAKEUP, 2}}),
          Reading(Key(3), "c", {{MW_REASON_WAKEUP, 4}})},
         {});
  const AttributionTotals& t = a.totals();
  EXPECT_EQ(t.process_migrations.size(), 3u);  // two names and "other"
  EXPECT_EQ(Moved(t, "a", MW_REASON_WAKEUP) + Moved(t, "b", MW_REASON_WAKEUP) + Moved(t, "c", MW_REASON_WAKEUP) +
                Moved(t, "other", MW_REASON_WAKEUP),
            7u);
  EXPECT_EQ(Moved(t, "c", MW_REASON_WAKEUP), 0u);
  EXPECT_EQ(Moved(t, "other", MW_REASON_WAKEUP), 4u);
  EXPECT_EQ(t.folded_processes, 1u);
}

TEST(AttributionFold, AnEvictedValueGetsNoLabelUntilAnExportShowedItsSeriesEnd) {
  // Two labels, both idle for more than ten minutes when "b" and then "a"
  // grow between two exports (the readings in that order): "b" takes the
  // label of "a", the idlest, and "a" counts under "other", though "c" is
  // idle too.
  using namespace std::chrono_literals;
  const LabelFolder::Clock::time_point t0{};
  TableDirectory directory;
  Attribution a(directory, 2, 20);
  Scraper scraper;
  Processes processes;
  auto interval = [&](LabelFolder::Clock::time_point now) {
    a.Fold(processes.Readings(), {}, now);
    scraper.Scrape(a, now);
    EXPECT_EQ(scraper.Counted(), processes.Total());
  };
  processes.Move(2, "a", 1);
  interval(t0);
  processes.Move(3, "c", 1);
  interval(t0 + 30s);
  processes.Move(1, "b", 4);
  processes.Move(2, "a", 2);
  a.Fold(processes.Readings(), {}, t0 + 11min);
  // "a" is exported once more, with its final value, before its series ends.
  EXPECT_EQ(Moved(a.totals(), "a", MW_REASON_LOAD_BALANCE), 1u);
  EXPECT_EQ(Moved(a.totals(), "other", MW_REASON_LOAD_BALANCE), 2u);
  EXPECT_EQ(Moved(a.totals(), "c", MW_REASON_LOAD_BALANCE), 1u);
  scraper.Scrape(a, t0 + 11min);
  // Until an export has shown the series of "a" ended.
  processes.Move(2, "a", 3);
  interval(t0 + 12min);
  EXPECT_FALSE(scraper.Shows("a"));
  EXPECT_EQ(Moved(a.totals(), "other", MW_REASON_LOAD_BALANCE), 5u);
  // That export over, the busier "a" takes the label of "c", with a new
  // series.
  processes.Move(2, "a", 7);
  interval(t0 + 13min);
  EXPECT_EQ(scraper.Value("a"), 7u);
  EXPECT_EQ(scraper.Ends("a"), 1);
  EXPECT_EQ(scraper.Ends("c"), 1);
}

TEST(AttributionFold, AStormingNewcomerGetsItsOwnLabelWithinTwoFolds) {
  ScrapedHost host(3);
  // Every label taken at boot by processes that then go idle.
  host.processes.Move(1, "boot-1", 20);
  host.processes.Move(2, "boot-2", 30);
  host.processes.Move(3, "boot-3", 40);
  for (int i = 0; i < 4; ++i) host.NextInterval();
  int folds = 0;
  while (!host.scraper.Shows("storm") && folds < 10) {
    host.processes.Move(10, "storm", 500);
    host.NextInterval();
    ++folds;
  }
  EXPECT_LE(folds, 2);
  // It took the label of the quietest: the others keep theirs.
  EXPECT_EQ(host.scraper.Ends("boot-1"), 1);
  EXPECT_TRUE(host.scraper.Shows("boot-2"));
  EXPECT_TRUE(host.scraper.Shows("boot-3"));
  EXPECT_EQ(host.scraper.Counted(), host.processes.Total());
}

TEST(AttributionFold, ADisplacedHoldersSeriesEndsAndOtherTakesItsGrowth) {
  ScrapedHost host(1);
  host.processes.Move(1, "quiet", 5);
  host.NextInterval();
  host.processes.Move(2, "storm", 1000);
  host.NextInterval();
  // The storm's first growth went to "other"; its label is taken from the
  // quiet process right after that export, which showed the final value.
  EXPECT_EQ(host.scraper.Value("quiet"), host.processes.Of(1));
  const uint64_t other_before = host.Other();
  EXPECT_EQ(other_before, 1000u);
  host.processes.Move(1, "quiet", 3);
  host.processes.Move(2, "storm", 1000);
  host.NextInterval();
  EXPECT_FALSE(host.scraper.Shows("quiet"));
  EXPECT_EQ(host.scraper.Ends("quiet"), 1);
  EXPECT_EQ(host.Other() - other_before, 3u);
  EXPECT_EQ(host.scraper.Value("storm"), 1000u);
  EXPECT_EQ(host.scraper.Counted(), host.processes.Total());
}

TEST(AttributionFold, SeriesAddUpToTheTrueTotalAcrossDisplacementAndReturn) {
  ScrapedHost host(2);
  host.processes.Move(1, "a", 10);
  host.processes.Move(2, "b", 10);
  host.NextInterval();
  EXPECT_EQ(host.scraper.Counted(), host.processes.Total());
  // "c" storms while "a" barely moves: "c" takes the label of "a", the
  // quieter of the two.
  for (int i = 0; i < 4; ++i) {
    host.processes.Move(1, "a", 1);
    host.processes.Move(2, "b", 300);
    host.processes.Move(3, "c", 400);
    host.NextInterval();
    EXPECT_EQ(host.scraper.Counted(), host.processes.Total());
  }
  EXPECT_EQ(host.scraper.Ends("a"), 1);
  EXPECT_TRUE(host.scraper.Shows("c"));
  // Then "c" stops and "a" storms: "a" takes the label of "c", now the
  // quieter, and comes back with a new series.
  uint64_t before = 0;
  for (int i = 0; i < 10 && !host.scraper.Shows("a"); ++i) {
    before = host.processes.Of(1);
    host.processes.Move(1, "a", 400);
    host.processes.Move(2, "b", 300);
    host.NextInterval();
    EXPECT_EQ(host.scraper.Counted(), host.processes.Total());
  }
  ASSERT_TRUE(host.scraper.Shows("a"));
  // The new series holds only what came after "a" got its label back.
  EXPECT_EQ(host.scraper.Value("a"), host.processes.Of(1) - before);
  EXPECT_EQ(host.scraper.Ends("c"), 1);
  EXPECT_TRUE(host.scraper.Shows("b"));
  for (int i = 0; i < 3; ++i) {
    host.processes.Move(1, "a", 400);
    host.processes.Move(3, "c", 2);
    host.NextInterval();
    EXPECT_EQ(host.scraper.Counted(), host.processes.Total());
  }
}

TEST(AttributionFold, TwoProcessesAsBusyDoNotTakeTurnsWithALabel) {
  ScrapedHost host(1);
  for (int i = 0; i < 40; ++i) {
    host.processes.Move(1, "first", 100);
    host.processes.Move(2, "second", 100);
    host.NextInterval();
  }
  EXPECT_EQ(host.scraper.AllEnds(), 0);
  EXPECT_EQ(host.scraper.Value("first"), host.processes.Of(1));
  EXPECT_EQ(host.Other(), host.processes.Of(2));
}

TEST(AttributionFold, ARequesterOfStopperWorkGetsItsOwnLabelToo) {
  TableDirectory directory;
  Attribution a(directory, 1, 20);
  LabelFolder::Clock::time_point now{};
  ProcessEntry numad = Reading(Key(1), "numad", {});
  numad.stats.affinity_changes = 1;
  ProcessEntry repin = Reading(Key(2), "repin", {});
  for (int i = 0; i < 3; ++i) {
    now += std::chrono::seconds(15);
    a.Fold({numad, repin}, {}, now);
    a.Relabel(now);
    repin.stats.affinity_changes += 200;
    repin.stats.stopper_requested_ns += 2'000'000;
    repin.stats.stopper_requested_runs += 200;
  }
  const AttributionTotals& t = a.totals();
  EXPECT_EQ(t.affinity_changes.count("numad"), 0u);
  ASSERT_EQ(t.affinity_changes.count("repin"), 1u);
  // Its first growth went to "other", before it had the label.
  EXPECT_EQ(t.affinity_changes.at("repin") + t.affinity_changes.at("other"), repin.stats.affinity_changes - 200);
}

TEST(AttributionFold, AVmThatLostItsLabelForBeingIdleGetsOneAgainAfterAnExport) {
  using namespace std::chrono_literals;
  TableDirectory directory;
  directory.identities[1] = {"qemu-system-x86", "guest1", false};
  directory.identities[2] = {"qemu-system-x86", "guest2", false};
  Attribution a(directory, 20, 1);
  Processes processes;
  const LabelFolder::Clock::time_point t0{};
  auto interval = [&](LabelFolder::Clock::time_point now) {
    a.Fold(processes.Readings(), {}, now);
    a.Relabel(now);
  };
  processes.Move(1, "qemu-system-x86", 5);
  interval(t0);
  processes.Move(2, "qemu-system-x86", 5);
  interval(t0 + 11min);  // guest1 idle for eleven minutes: guest2 takes its label
  EXPECT_EQ(a.totals().vm_migrations.count("guest1"), 0u);
  ASSERT_EQ(a.totals().vm_migrations.count("guest2"), 1u);
  interval(t0 + 12min);  // an export without guest1: its series ended
  processes.Move(1, "qemu-system-x86", 3);
  interval(t0 + 23min);  // guest2 idle for twelve minutes
  ASSERT_EQ(a.totals().vm_migrations.count("guest1"), 1u);
  EXPECT_EQ(a.totals().vm_migrations.at("guest1")[MW_REASON_LOAD_BALANCE], 3u);
}

TEST(AttributionFold, WhatAProcessAskedForGoesToItsRequesterLabel) {
  TableDirectory directory;
  Attribution a(directory, 20, 20);
  ProcessEntry e = Reading(Key(100), "numad", {});
  e.stats.stopper_requested_ns = 1500;
  e.stats.stopper_requested_runs = 3;
  e.stats.affinity_changes = 2;
  a.Fold({e}, {});
  const AttributionTotals& t = a.totals();
  EXPECT_EQ(t.requester_stopper_ns.at("numad"), 1500u);
  EXPECT_EQ(t.requester_stopper_runs.at("numad"), 3u);
  EXPECT_EQ(t.affinity_changes.at("numad"), 2u);
  // It moved nothing of its own.
  EXPECT_EQ(t.process_migrations.count("numad"), 0u);
}

// A VM that is never moved but whose vCPUs the stopper preempts: its lost
// time goes to its process and VM labels, growth only, and it ranks for a
// label like time spent moving it.
TEST(AttributionFold, StopperTimeAVmLostGoesToItsProcessAndVm) {
  TableDirectory directory;
  directory.identities[100] = {"qemu-system-x86", "guest1", false};
  Attribution a(directory, 20, 20);
  ProcessEntry e = Reading(Key(100), "qemu-system-x86", {});
  e.stats.stopper_preempted_ns = 7000;
  a.Fold({e}, {});
  e.stats.stopper_preempted_ns = 9000;
  a.Fold({e}, {});
  a.Fold({e}, {});
  const AttributionTotals& t = a.totals();
  EXPECT_EQ(t.process_stopper_preempted_ns.at("qemu-system-x86"), 9000u);
  EXPECT_EQ(t.vm_stopper_preempted_ns.at("guest1"), 9000u);
  // Moving it took nothing.
  EXPECT_EQ(t.vm_stopper_ns.at("guest1"), 0u);
  EXPECT_EQ(t.process_stopper_ns.at("qemu-system-x86"), 0u);
}

VcpuReading Vcpu(const std::string& vm, uint32_t tgid, uint32_t tid, uint64_t run_delay_ns) {
  return VcpuReading{vm, tgid, tid, run_delay_ns};
}

TEST(AttributionFoldVcpus, AnExitedThreadKeepsItsDelayAndTheCountDrops) {
  TableDirectory directory;
  Attribution a(directory, 20, 20);
  a.FoldVcpus({Vcpu("web", 100, 101, 1000), Vcpu("web", 100, 102, 50)});
  a.FoldVcpus({Vcpu("web", 100, 101, 1600), Vcpu("web", 100, 102, 80)});
  EXPECT_EQ(a.totals().vm_vcpus.at("web"), 2u);
  EXPECT_EQ(a.totals().vm_vcpu_delay_ns.at("web"), 1680u);
  // 102 exits: what it waited up to its last reading stays counted.
  a.FoldVcpus({Vcpu("web", 100, 101, 1700)});
  EXPECT_EQ(a.totals().vm_vcpus.at("web"), 1u);
  EXPECT_EQ(a.totals().vm_vcpu_delay_ns.at("web"), 1780u);
  // The VM stops: its count reads 0, its delay stays.
  a.FoldVcpus({});
  EXPECT_EQ(a.totals().vm_vcpus.at("web"), 0u);
  EXPECT_EQ(a.totals().vm_vcpu_delay_ns.at("web"), 1780u);
}

TEST(AttributionFoldVcpus, ALowerReadingIsANewThreadCountedFromItsStart) {
  TableDirectory directory;
  Attribution a(directory, 20, 20);
  a.FoldVcpus({Vcpu("db", 100, 101, 900)});
  a.FoldVcpus({Vcpu("db", 100, 101, 40)});
  EXPECT_EQ(a.totals().vm_vcpu_delay_ns.at("db"), 940u);
  a.FoldVcpus({Vcpu("db", 100, 101, 70)});
  EXPECT_EQ(a.totals().vm_vcpu_delay_ns.at("db"), 970u);
}

TEST(AttributionFoldVcpus, ARunningVmKeepsItsLabelAndAStoppedOneLosesItsSeries) {
  TableDirectory directory;
  Attribution a(directory, 20, 1);
  const auto start = LabelFolder::Clock::now();
  const auto later = start + std::chrono::minutes(11);
  a.FoldVcpus({Vcpu("first", 100, 101, 10)}, start);
  // Still running eleven minutes later, though its delay did not grow:
  // a newcomer beyond the cap counts under other.
  a.FoldVcpus({Vcpu("first", 100, 101, 10), Vcpu("second", 200, 201, 5)}, later);
  EXPECT_EQ(a.totals().vm_vcpus.at("first"), 1u);
  EXPECT_EQ(a.totals().vm_vcpu_delay_ns.at("other"), 5u);
  // Once it stopped and stayed idle, its slot and series go to the newcomer.
  a.FoldVcpus({}, later);
  a.FoldVcpus({Vcpu("third", 300, 301, 7)}, later + std::chrono::minutes(11));
  // Its series is exported once more with its final value, then ends.
  EXPECT_EQ(a.totals().vm_vcpu_delay_ns.at("first"), 10u);
  a.Relabel(later + std::chrono::minutes(11));
  EXPECT_EQ(a.totals().vm_vcpus.count("first"), 0u);
  EXPECT_EQ(a.totals().vm_vcpu_delay_ns.count("first"), 0u);
  EXPECT_EQ(a.totals().vm_vcpu_delay_ns.at("third"), 7u);
  EXPECT_EQ(a.totals().vm_vcpus.at("other"), 0u);
}

}  // namespace
}  // namespace migwatch

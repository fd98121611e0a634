#include "migwatch/model/label_folder.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace migwatch {
namespace {

using namespace std::chrono_literals;
using Clock = LabelFolder::Clock;

TEST(LabelFolder, FreeSlotsFirstThenOther) {
  LabelFolder folder(2);
  EXPECT_EQ(folder.cap(), 2u);
  EXPECT_EQ(folder.Label("vm-a"), "vm-a");
  EXPECT_EQ(folder.Label("vm-b"), "vm-b");
  EXPECT_EQ(folder.Label("vm-c"), "other");
  EXPECT_EQ(folder.Label("vm-d"), "other");
  EXPECT_EQ(folder.folded_values(), 2u);
  EXPECT_TRUE(folder.TakeEvicted().empty());
}

TEST(LabelFolder, ActiveValuesKeepTheirSlots) {
  const Clock::time_point t0{};
  LabelFolder folder(2, 10min);
  folder.Label("vm-a", t0);
  folder.Label("vm-b", t0);
  // Both stay active: a newcomer folds, however long it keeps coming.
  for (int minute = 1; minute <= 60; ++minute) {
    const auto now = t0 + std::chrono::minutes(minute);
    EXPECT_EQ(folder.Label("vm-a", now), "vm-a");
    EXPECT_EQ(folder.Label("vm-b", now), "vm-b");
    EXPECT_EQ(folder.Label("vm-c", now), "other");
  }
  EXPECT_TRUE(folder.TakeEvicted().empty());
  EXPECT_EQ(folder.folded_values(), 1u);
}

TEST(LabelFolder, AnIdleValueGivesItsSlotToANewActiveOne) {
  const Clock::time_point t0{};
  LabelFolder folder(2, 10min);
  folder.Label("early", t0);
  folder.Label("busy", t0);
  EXPECT_EQ(folder.Label("storm", t0 + 5min), "other");  // "early" idle for 5 min only
  folder.Label("busy", t0 + 9min);
  // "early" has been idle for more than 10 minutes: the storm takes its slot.
  EXPECT_EQ(folder.Label("storm", t0 + 11min), "storm");
  EXPECT_EQ(folder.TakeEvicted(), std::vector<std::string>{"early"});
  EXPECT_TRUE(folder.TakeEvicted().empty());
  EXPECT_EQ(folder.Label("busy", t0 + 12min), "busy");
  // The least recently active slot is the one given away.
  EXPECT_EQ(folder.Label("late", t0 + 25min), "late");
  EXPECT_EQ(folder.TakeEvicted(), std::vector<std::string>{"storm"});
}

TEST(LabelFolder, FoldedValuesCountsDistinctValues) {
  LabelFolder folder(1);
  folder.Label("kept");
  EXPECT_EQ(folder.folded_values(), 0u);
  folder.Label("x");
  folder.Label("x");
  folder.Label("y");
  folder.Label("kept");
  EXPECT_EQ(folder.folded_values(), 2u);
}

TEST(LabelFolder, LiteralOtherNeitherTakesASlotNorCountsAsFolded) {
  LabelFolder folder(1);
  EXPECT_EQ(folder.Label("other"), "other");
  EXPECT_EQ(folder.folded_values(), 0u);
  EXPECT_EQ(folder.Label("vm-a"), "vm-a");  // the only slot was still free
  EXPECT_EQ(folder.Label("other"), "other");
  EXPECT_EQ(folder.folded_values(), 0u);
}

TEST(LabelFolder, EmptyValueIsAnOrdinaryValue) {
  LabelFolder folder(1);
  EXPECT_EQ(folder.Label(""), "");
  EXPECT_EQ(folder.Label("late"), "other");
}

TEST(LabelFolder, ManyDistinctFoldedValuesStayCountedWithBoundedMemory) {
  LabelFolder folder(1);
  folder.Label("kept");
  const size_t n = LabelFolder::kMaxRememberedFolds + 1000;
  for (size_t i = 0; i < n; ++i) folder.Label("value-" + std::to_string(i));
  EXPECT_EQ(folder.folded_values(), n);
}

TEST(LabelFolder, LabelDoesNotAliasTheArgument) {
  LabelFolder folder(1);
  std::string value = "vm-a";
  const std::string& label = folder.Label(value);
  value = "changed";
  EXPECT_EQ(label, "vm-a");
}

// What Attribution does for a value that grew: takes its label and reports
// the growth for the ranking.
std::string Grew(LabelFolder& folder, const std::string& value, LabelFolder::Activity grew, Clock::time_point now) {
  std::string label = folder.Label(value, now);
  folder.Observe(value, grew);
  return label;
}

// Every slot taken by a value that did something once, then nothing.
void FillWithQuietValues(LabelFolder& folder, Clock::time_point now) {
  for (size_t i = 0; i < folder.cap(); ++i) {
    const std::string value = "boot-" + std::to_string(i);
    ASSERT_EQ(Grew(folder, value, {.migrations = 10}, now), value);
  }
  folder.ReassignSlots(now);
}

TEST(LabelFolder, ABusyNewcomerTakesTheSlotOfTheQuietestHolder) {
  const Clock::time_point t0{};
  LabelFolder folder(2);
  Grew(folder, "quiet", {.migrations = 10}, t0);
  Grew(folder, "busy", {.migrations = 500}, t0);
  folder.ReassignSlots(t0);
  EXPECT_TRUE(folder.TakeEvicted().empty());

  EXPECT_EQ(Grew(folder, "storm", {.migrations = 1000}, t0 + 15s), "other");
  Grew(folder, "busy", {.migrations = 500}, t0 + 15s);
  folder.ReassignSlots(t0 + 15s);
  EXPECT_EQ(folder.TakeEvicted(), std::vector<std::string>{"quiet"});
  EXPECT_EQ(folder.Label("storm", t0 + 30s), "storm");
  EXPECT_EQ(folder.Label("busy", t0 + 30s), "busy");
  EXPECT_EQ(folder.Label("quiet", t0 + 30s), "other");
  EXPECT_TRUE(folder.Holds("storm"));
  EXPECT_FALSE(folder.Holds("quiet"));
}

TEST(LabelFolder, AnEvictedValueWaitsUntilAnExportShowedItsSeriesEnd) {
  const Clock::time_point t0{};
  LabelFolder folder(2, 10min);
  Grew(folder, "idle", {.migrations = 10}, t0 + 5min);
  Grew(folder, "quiet", {.migrations = 1}, t0 + 10min);
  folder.ReassignSlots(t0 + 10min);
  Grew(folder, "quiet", {.migrations = 1}, t0 + 11min);
  EXPECT_EQ(Grew(folder, "storm", {.migrations = 1000}, t0 + 11min), "other");
  folder.ReassignSlots(t0 + 11min);
  EXPECT_EQ(folder.TakeEvicted(), std::vector<std::string>{"quiet"});
  // "idle" has been idle for eleven minutes, yet "quiet" does not take its
  // slot before the next ReassignSlots(): the export before it shows the
  // series of "quiet" ended.
  EXPECT_EQ(Grew(folder, "quiet", {.migrations = 1}, t0 + 16min), "other");
  EXPECT_TRUE(folder.Holds("idle"));
  folder.ReassignSlots(t0 + 16min + 15s);
  EXPECT_TRUE(folder.TakeEvicted().empty());
  EXPECT_EQ(Grew(folder, "quiet", {.migrations = 1}, t0 + 16min + 16s), "quiet");
  EXPECT_EQ(folder.TakeEvicted(), std::vector<std::string>{"idle"});
  // Evicted for being idle, between two exports: its series is exported once
  // more at the next one and seen ended at the one after.
  EXPECT_EQ(Grew(folder, "idle", {.migrations = 1}, t0 + 16min + 17s), "other");
  folder.ReassignSlots(t0 + 16min + 30s);
  EXPECT_EQ(Grew(folder, "idle", {.migrations = 1}, t0 + 16min + 31s), "other");
  folder.ReassignSlots(t0 + 16min + 45s);
  EXPECT_FALSE(folder.Holds("idle"));
  EXPECT_TRUE(folder.TakeEvicted().empty());
}

TEST(LabelFolder, ValuesAboutAsBusyDoNotTakeTurns) {
  const Clock::time_point t0{};
  LabelFolder folder(1);
  folder.Label("holder", t0);
  for (int round = 0; round < 100; ++round) {
    const auto now = t0 + round * 15s;
    // Alike on average, each busier by half than the other every other round.
    Grew(folder, "holder", {.migrations = round % 2 ? 100u : 150u}, now);
    Grew(folder, "challenger", {.migrations = round % 2 ? 150u : 100u}, now);
    folder.ReassignSlots(now);
    ASSERT_TRUE(folder.TakeEvicted().empty()) << "round " << round;
  }
  EXPECT_EQ(folder.Label("holder", t0 + 100 * 15s), "holder");
}

TEST(LabelFolder, AQuietCrowdDoesNotTakeTurns) {
  const Clock::time_point t0{};
  LabelFolder folder(4);
  FillWithQuietValues(folder, t0);
  for (int round = 1; round <= 10; ++round) {
    const auto now = t0 + round * 15s;
    for (int i = 0; i < 1000; ++i) Grew(folder, "crowd-" + std::to_string(i), {.migrations = 1}, now);
    folder.ReassignSlots(now);
  }
  EXPECT_TRUE(folder.TakeEvicted().empty());
}

TEST(LabelFolder, StopperTimeAloneEarnsASlot) {
  const Clock::time_point t0{};
  LabelFolder folder(2);
  Grew(folder, "mover", {.migrations = 1000}, t0);
  folder.Label("quiet", t0);
  folder.ReassignSlots(t0);
  // Few migrations, each a long stopper run: none of the others used the stopper.
  Grew(folder, "repinner", {.migrations = 5, .stopper_ns = 2'000'000}, t0 + 15s);
  Grew(folder, "mover", {.migrations = 1000}, t0 + 15s);
  folder.ReassignSlots(t0 + 15s);
  EXPECT_EQ(folder.TakeEvicted(), std::vector<std::string>{"quiet"});
  EXPECT_TRUE(folder.Holds("repinner"));
  EXPECT_TRUE(folder.Holds("mover"));
}

TEST(LabelFolder, PastActivityFadesAtEachReassignment) {
  const Clock::time_point t0{};
  LabelFolder folder(1);
  Grew(folder, "burst", {.migrations = 1000}, t0);
  folder.ReassignSlots(t0);
  // Right after the burst, a steady value ten times quieter cannot take
  // its slot; as the burst recedes, the steady value's share grows until
  // it does.
  int rounds = 0;
  while (!folder.Holds("steady") && rounds < 20) {
    ++rounds;
    Grew(folder, "steady", {.migrations = 100}, t0 + rounds * 15s);
    folder.ReassignSlots(t0 + rounds * 15s);
  }
  EXPECT_GT(rounds, 1);
  EXPECT_LT(rounds, 20);
  EXPECT_EQ(folder.TakeEvicted(), std::vector<std::string>{"burst"});
}

TEST(LabelFolder, RankedValuesStayBounded) {
  const Clock::time_point t0{};
  LabelFolder folder(2);
  FillWithQuietValues(folder, t0);
  const size_t many = 3 * LabelFolder::kMaxRankedValues;
  for (size_t i = 0; i < many; ++i) folder.Observe("value-" + std::to_string(i), {.migrations = 1 + i % 7});
  EXPECT_LE(folder.ranked_values(), LabelFolder::kMaxRankedValues);
  folder.ReassignSlots(t0 + 15s);
  EXPECT_LE(folder.ranked_values(), LabelFolder::kMaxRankedValues / 2);
  // The literal "other" is never ranked: it never takes a slot.
  folder.Observe("other", {.migrations = 1'000'000});
  folder.ReassignSlots(t0 + 30s);
  EXPECT_FALSE(folder.Holds("other"));
}

TEST(LabelFolder, ZeroCapIsRejected) { EXPECT_THROW(LabelFolder(0), std::invalid_argument); }

}  // namespace
}  // namespace migwatch

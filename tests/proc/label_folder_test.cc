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

TEST(LabelFolder, ZeroCapIsRejected) { EXPECT_THROW(LabelFolder(0), std::invalid_argument); }

}  // namespace
}  // namespace migwatch

#include "migwatch/proc/label_folder.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace migwatch {
namespace {

TEST(LabelFolder, FirstComeFirstServedThenOther) {
  LabelFolder folder(2);
  EXPECT_EQ(folder.cap(), 2u);
  EXPECT_EQ(folder.Label("vm-a"), "vm-a");
  EXPECT_EQ(folder.Label("vm-b"), "vm-b");
  EXPECT_EQ(folder.Label("vm-c"), "other");
  EXPECT_EQ(folder.Label("vm-d"), "other");
  EXPECT_EQ(folder.folded_values(), 2u);
}

TEST(LabelFolder, ValuesKeepTheirLabelForever) {
  LabelFolder folder(2);
  folder.Label("vm-a");
  folder.Label("vm-b");
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(folder.Label("vm-c"), "other");
    EXPECT_EQ(folder.Label("vm-b"), "vm-b");
    EXPECT_EQ(folder.Label("vm-a"), "vm-a");
  }
  // A folded value never gets a slot later on, or its counter series would
  // move from "other" to its own label and both would jump.
  EXPECT_EQ(folder.Label("vm-c"), "other");
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
  // The only slot is still free.
  EXPECT_EQ(folder.Label("vm-a"), "vm-a");
  EXPECT_EQ(folder.Label("other"), "other");
  EXPECT_EQ(folder.folded_values(), 0u);
}

TEST(LabelFolder, EmptyValueIsAnOrdinaryValue) {
  LabelFolder folder(1);
  EXPECT_EQ(folder.Label(""), "");
  EXPECT_EQ(folder.Label("late"), "other");
}

TEST(LabelFolder, ReferencesStayValidAsTheFolderGrows) {
  LabelFolder folder(5000);
  const std::string& first = folder.Label("first");
  for (int i = 0; i < 4000; ++i) folder.Label("value-" + std::to_string(i));
  EXPECT_EQ(first, "first");
  EXPECT_EQ(&first, &folder.Label("first"));
}

TEST(LabelFolder, ReferencesSurviveMovingTheFolder) {
  LabelFolder folder(1);
  const std::string& kept = folder.Label("kept");
  const std::string& other = folder.Label("folded");
  LabelFolder moved = std::move(folder);
  EXPECT_EQ(kept, "kept");
  EXPECT_EQ(other, "other");
  EXPECT_EQ(&kept, &moved.Label("kept"));
  EXPECT_EQ(moved.folded_values(), 1u);
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

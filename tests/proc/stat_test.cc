#include "migwatch/kernel/proc/stat.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace migwatch {
namespace {

// Real lines from Linux 6.18.
constexpr std::string_view kCatStat =
    "6566 (cat) R 6562 6562 5884 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 34116 3133440 391 "
    "18446744073709551615 94761098100736 94761098120617 140729499171728 0 0 0 0 0 0 0 0 0 17 1 0 "
    "0 0 0 0 94761098136624 94761098138240 94761700069376 140729499175563 140729499175583 "
    "140729499175583 140729499176939 0\n";
constexpr std::string_view kKworkerStat =
    "12 (kworker/u8:0-ext4-rsv-conversion) I 2 0 0 0 -1 69239136 0 0 0 0 0 13 0 0 20 0 1 0 9 0 0 "
    "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

// A stat line with `comm` and fields 3.. from `fields`, joined by spaces.
std::string StatLine(std::string_view comm, const std::vector<std::string>& fields) {
  std::string line = "4242 (" + std::string(comm) + ")";
  for (const std::string& field : fields) line += " " + field;
  return line + "\n";
}

// Fields 3..52 of a plausible user process, indexed by proc(5) field number.
std::vector<std::string> UserFields() {
  std::vector<std::string> fields;
  for (int number = 3; number <= 52; ++number) fields.push_back("0");
  auto set = [&](std::size_t number, std::string value) { fields[number - 3] = std::move(value); };
  set(3, "S");
  set(4, "1");
  set(5, "-1");  // pgrp, tty_nr and tpgid may be negative; they are not parsed
  set(8, "-1");
  set(9, "4194560");
  set(14, "3");
  set(15, "4");
  set(19, "-5");
  set(20, "2");
  set(22, "123456");
  set(24, "512");
  set(39, "1");
  return fields;
}

// " S 1 -1 ...\n": what follows the comm in StatLine.
std::string FieldsAfterComm() {
  return StatLine("", UserFields()).substr(std::string_view("4242 ()").size());
}

TEST(ParseStat, RealUserProcess) {
  const auto stat = ParseStat(kCatStat);
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->pid, 6566);
  EXPECT_EQ(stat->comm, "cat");
  EXPECT_EQ(stat->state, 'R');
  EXPECT_EQ(stat->ppid, 6562);
  EXPECT_EQ(stat->flags, 4194304u);
  EXPECT_FALSE(stat->IsKernelThread());
  EXPECT_EQ(stat->utime_ticks, 0u);
  EXPECT_EQ(stat->stime_ticks, 0u);
  EXPECT_EQ(stat->num_threads, 1u);
  EXPECT_EQ(stat->starttime_ticks, 34116u);
  EXPECT_EQ(stat->rss_pages, 391u);
  EXPECT_EQ(stat->processor, 1u);
}

TEST(ParseStat, RealKernelThreadWithLongComm) {
  const auto stat = ParseStat(kKworkerStat);
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->pid, 12);
  EXPECT_EQ(stat->comm, "kworker/u8:0-ext4-rsv-conversion");
  EXPECT_EQ(stat->state, 'I');
  EXPECT_EQ(stat->ppid, 2);
  EXPECT_TRUE(stat->IsKernelThread());
  EXPECT_EQ(stat->stime_ticks, 13u);
  EXPECT_EQ(stat->starttime_ticks, 9u);
}

TEST(ParseStat, CommsThatLookLikeSyntax) {
  const std::string_view comms[] = {
      ") (", "a) (b", "x) S 1 2 3 (", "))", "((", "with space", "tab\there", "new\nline", "",
      "(",   ")",     "evil) R 1 (",
  };
  for (const std::string_view comm : comms) {
    SCOPED_TRACE(comm);
    const auto stat = ParseStat(StatLine(comm, UserFields()));
    ASSERT_TRUE(stat.has_value());
    EXPECT_EQ(stat->comm, comm);
    EXPECT_EQ(stat->pid, 4242);
    EXPECT_EQ(stat->state, 'S');
    EXPECT_EQ(stat->ppid, 1);
    EXPECT_EQ(stat->utime_ticks, 3u);
    EXPECT_EQ(stat->stime_ticks, 4u);
    EXPECT_EQ(stat->num_threads, 2u);
    EXPECT_EQ(stat->starttime_ticks, 123456u);
    EXPECT_EQ(stat->rss_pages, 512u);
    EXPECT_EQ(stat->processor, 1u);
  }
}

TEST(ParseStat, OnlyFieldsUpToProcessorAreRequired) {
  std::vector<std::string> fields = UserFields();
  fields.resize(39 - 2);  // fields 3..39
  EXPECT_TRUE(ParseStat(StatLine("short", fields)).has_value());
  fields.pop_back();
  EXPECT_EQ(ParseStat(StatLine("short", fields)), std::nullopt);
}

TEST(ParseStat, MalformedInput) {
  struct Case {
    std::string name;
    std::string line;
  };
  auto with = [](std::size_t number, std::string value) {
    std::vector<std::string> fields = UserFields();
    fields[number - 3] = std::move(value);
    return StatLine("p", fields);
  };
  const Case cases[] = {
      {"empty", ""},
      {"pid only", "4242"},
      {"no comm", "4242 S 1 2 3"},
      {"unclosed comm", "4242 (cat S 1 2 3\n"},
      {"truncated after comm", "4242 (cat)"},
      {"truncated after comm and space", "4242 (cat) "},
      {"truncated in the middle", std::string(kCatStat.substr(0, 60))},
      {"no space after comm", "4242 (cat)S 1 2\n"},
      {"negative pid", "-1 (cat)" + FieldsAfterComm()},
      {"non-digit pid", "42a (cat)" + FieldsAfterComm()},
      {"pid beyond pid_t", "2147483648 (cat)" + FieldsAfterComm()},
      {"space before pid", " 4242 (cat)" + FieldsAfterComm()},
      {"empty state", with(3, "")},
      {"two-letter state", with(3, "RS")},
      {"negative ppid", with(4, "-1")},
      {"flags beyond 32 bits", with(9, "4294967296")},
      {"non-digit utime", with(14, "12a")},
      {"utime beyond 64 bits", with(14, "18446744073709551616")},
      {"signed stime", with(15, "+4")},
      {"negative num_threads", with(20, "-2")},
      {"empty starttime", with(22, "")},
      {"non-digit rss", with(24, "x")},
      {"processor beyond 32 bits", with(39, "4294967296")},
      {"double space", "4242 (p) S  1" + FieldsAfterComm().substr(4)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(ParseStat(c.line), std::nullopt);
  }
}

TEST(ParseStat, HugeButValidNumbers) {
  std::vector<std::string> fields = UserFields();
  fields[9 - 3] = "4294967295";
  fields[14 - 3] = "18446744073709551615";
  fields[22 - 3] = "18446744073709551615";
  const auto stat = ParseStat(StatLine("big", fields));
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->flags, 4294967295u);
  EXPECT_TRUE(stat->IsKernelThread());
  EXPECT_EQ(stat->utime_ticks, UINT64_MAX);
  EXPECT_EQ(stat->starttime_ticks, UINT64_MAX);
}

}  // namespace
}  // namespace migwatch

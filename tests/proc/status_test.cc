#include "migwatch/kernel/proc/status.h"

#include <gtest/gtest.h>

namespace migwatch {
namespace {

// Excerpt of a real status file (Linux 6.18).
constexpr std::string_view kStatus =
    "Name:\tmigration/0\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t18\n"
    "PPid:\t2\n"
    "Uid:\t0\t0\t0\t0\n"
    "Groups:\t \n"
    "Kthread:\t1\n"
    "VmRSS:\t    1672 kB\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t000001fffeffffff\n"
    "CapEff:\t000001fffeffffff\n"
    "Cpus_allowed_list:\t0\n";

TEST(ParseStatusField, Table) {
  struct Case {
    std::string_view key;
    std::optional<std::string> value;
  };
  const Case cases[] = {
      {"Name", "migration/0"},
      {"State", "S (sleeping)"},
      {"PPid", "2"},
      {"Uid", "0\t0\t0\t0"},
      {"Groups", ""},
      {"VmRSS", "1672 kB"},
      {"CapEff", "000001fffeffffff"},
      {"Cpus_allowed_list", "0"},      // last line
      {"Cpus_allowed", std::nullopt},  // a prefix of a key is not the key
      {"Pid", std::nullopt},           // suffix of "PPid"
      {"name", std::nullopt},          // keys are case-sensitive
      {"NoSuchKey", std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    EXPECT_EQ(ParseStatusField(kStatus, c.key), c.value);
  }
}

TEST(ParseStatusField, MalformedAndEdgeInput) {
  EXPECT_EQ(ParseStatusField("", "Name"), std::nullopt);
  EXPECT_EQ(ParseStatusField("Name", "Name"), std::nullopt);   // no colon
  EXPECT_EQ(ParseStatusField("Name:", "Name"), "");            // truncated value
  EXPECT_EQ(ParseStatusField("Name:\tcat", "Name"), "cat");    // no final newline
  EXPECT_EQ(ParseStatusField("Name:\ta:b\n", "Name"), "a:b");  // colon in value
  EXPECT_EQ(ParseStatusField("Name:\tfirst\nName:\tsecond\n", "Name"), "first");
  EXPECT_EQ(ParseStatusField("X:\t1\r\n", "X"), "1");
  // Only the start of a line is a key: text after a newline inside a value
  // cannot appear, since the kernel escapes newlines in Name.
  EXPECT_EQ(ParseStatusField("Name:\tx\\nPid: 7\n", "Pid"), std::nullopt);
}

TEST(ParseCapabilityMask, Table) {
  struct Case {
    std::string_view text;
    std::optional<std::uint64_t> mask;
  };
  const Case cases[] = {
      {"0000000000000000", 0},
      {"000001fffeffffff", 0x000001fffeffffffULL},
      {"000001FFFEFFFFFF", 0x000001fffeffffffULL},
      {"ffffffffffffffff", UINT64_MAX},
      {"0000000000200000", 1ULL << 21},  // CAP_SYS_ADMIN alone
      {"1", 1},
      {"", std::nullopt},
      {"10000000000000000", std::nullopt},  // 17 digits: more than 64 bits
      {"0x1f", std::nullopt},
      {"000001fffeffffffg", std::nullopt},
      {"00000000 0000000", std::nullopt},
      {"-1", std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(ParseCapabilityMask(c.text), c.mask);
  }
}

TEST(ParseCapabilityMask, ComposesWithParseStatusField) {
  const auto eff = ParseStatusField(kStatus, "CapEff");
  ASSERT_TRUE(eff.has_value());
  const auto mask = ParseCapabilityMask(*eff);
  ASSERT_TRUE(mask.has_value());
  EXPECT_TRUE(*mask & (1ULL << 21));   // CAP_SYS_ADMIN
  EXPECT_FALSE(*mask & (1ULL << 24));  // CAP_SYS_RESOURCE is the cleared bit
}

}  // namespace
}  // namespace migwatch

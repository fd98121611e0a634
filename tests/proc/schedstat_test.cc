#include "migwatch/kernel/proc/schedstat.h"

#include <gtest/gtest.h>

namespace migwatch {
namespace {

TEST(ParseSchedStat, Table) {
  struct Case {
    std::string_view text;
    std::optional<SchedStat> expected;
  };
  const Case cases[] = {
      {"10371222 51394 1042\n", SchedStat{10'371'222, 51'394, 1'042}},
      {"0 0 0\n", SchedStat{0, 0, 0}},
      {"1 2 3", SchedStat{1, 2, 3}},
      {"1\t2  3\n\n", SchedStat{1, 2, 3}},
      {"18446744073709551615 18446744073709551615 18446744073709551615\n",
       SchedStat{UINT64_MAX, UINT64_MAX, UINT64_MAX}},
      {"", std::nullopt},
      {"\n", std::nullopt},
      {"1 2\n", std::nullopt},      // truncated
      {"1 2 3 4\n", std::nullopt},  // extra field
      {"1 2 x\n", std::nullopt},
      {"1 -2 3\n", std::nullopt},
      {"1 2 3x\n", std::nullopt},
      {"18446744073709551616 0 0\n", std::nullopt},
      {"1,2,3\n", std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(ParseSchedStat(c.text), c.expected);
  }
}

}  // namespace
}  // namespace migwatch

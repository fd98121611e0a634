#include "migwatch/kernel/proc/sched.h"

#include <gtest/gtest.h>

#include <string>

namespace migwatch {
namespace {

// As printed by Linux 6.18 for a running task (trimmed after numa lines).
constexpr std::string_view kSched =
    "cp (9806, #threads: 1)\n"
    "-------------------------------------------------------------------\n"
    "se.exec_start                                :        576693.966499\n"
    "se.vruntime                                  :           166.310974\n"
    "se.sum_exec_runtime                          :             0.084469\n"
    "se.nr_migrations                             :                    1\n"
    "nr_switches                                  :                    1\n"
    "prio                                         :                  120\n"
    "current_node=0, numa_group_id=0\n"
    "numa_faults node=0 task_private=0 task_shared=0 group_private=0 group_shared=0\n";

// The row that ends the header, as the kernel prints it.
const std::string kSeparator(67, '-');

std::string Body(std::string_view runtime, std::string_view migrations) {
  return "t (1, #threads: 1)\n" + kSeparator +
         "\n"
         "se.sum_exec_runtime                          : " +
         std::string(runtime) +
         "\nse.nr_migrations                             : " + std::string(migrations) + "\n";
}

TEST(ParseSched, RealFile) {
  const auto sched = ParseSched(kSched);
  ASSERT_TRUE(sched.has_value());
  EXPECT_EQ(sched->nr_migrations, 1u);
  EXPECT_EQ(sched->sum_exec_runtime_ns, 84'469u);
}

TEST(ParseSchedMillisecondsToNs, Table) {
  struct Case {
    std::string_view text;
    std::optional<std::uint64_t> ns;
  };
  const Case cases[] = {
      {"0.000000", 0},
      {"0.000001", 1},
      {"10.371222", 10'371'222},
      {"576693.966499", 576'693'966'499},
      // UINT64_MAX ns = 18446744073709.551615 ms: the largest value that fits.
      {"18446744073709.551615", 18'446'744'073'709'551'615u},
      {"18446744073709.551616", std::nullopt},
      {"18446744073710.000000", std::nullopt},
      {"99999999999999999999.000000", std::nullopt},
      {"1.5", std::nullopt},        // not the kernel's six decimals
      {"1.0000001", std::nullopt},  // more precision than nanoseconds
      {"1", std::nullopt},
      {"-1.048576", std::nullopt},  // se.vruntime can be negative; runtime cannot
      {"+1.000000", std::nullopt},
      {".000001", std::nullopt},
      {"1.", std::nullopt},
      {"1.00000a", std::nullopt},
      {"1.-00001", std::nullopt},
      {"", std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(ParseSchedMillisecondsToNs(c.text), c.ns);
  }
}

TEST(ParseSched, MalformedInput) {
  struct Case {
    std::string name;
    std::string contents;
  };
  const Case cases[] = {
      {"empty", ""},
      {"header only", "t (1, #threads: 1)\n" + kSeparator + "\n"},
      {"no separator line", "se.sum_exec_runtime : 1.000000\nse.nr_migrations : 3\n"},
      {"separator too short to be the kernel's",
       "t (1, #threads: 1)\n---------------\nse.sum_exec_runtime : 1.000000\nse.nr_migrations : "
       "3\n"},
      {"truncated before nr_migrations",
       std::string(kSched.substr(0, kSched.find("se.nr_migrations")))},
      {"truncated inside runtime value",
       std::string(kSched.substr(0, kSched.find("0.084469") + 4))},
      {"runtime without decimals", Body("84", "1")},
      {"non-digit migrations", Body("0.084469", "1x")},
      {"negative migrations", Body("0.084469", "-1")},
      {"migrations beyond 64 bits", Body("0.084469", "18446744073709551616")},
      {"empty migrations", Body("0.084469", "")},
      {"runtime beyond 64 bits", Body("99999999999999999.000000", "1")},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(ParseSched(c.contents), std::nullopt);
  }
}

TEST(ParseSched, HugeButValidNumbers) {
  const auto sched = ParseSched(Body("18446744073709.551615", "18446744073709551615"));
  ASSERT_TRUE(sched.has_value());
  EXPECT_EQ(sched->nr_migrations, 18'446'744'073'709'551'615u);
  EXPECT_EQ(sched->sum_exec_runtime_ns, 18'446'744'073'709'551'615u);
}

TEST(ParseSched, CommInHeaderCannotInjectFields) {
  // A task names itself; prctl(PR_SET_NAME) accepts newlines and colons.
  const std::string contents =
      "x\n-\nse.nr_migrations: 999\nse.sum_exec_runtime: 5.000000 (77, #threads: 1)\n" +
      kSeparator +
      "\n"
      "se.sum_exec_runtime                          :             2.000003\n"
      "se.nr_migrations                             :                    4\n";
  const auto sched = ParseSched(contents);
  ASSERT_TRUE(sched.has_value());
  EXPECT_EQ(sched->nr_migrations, 4u);
  EXPECT_EQ(sched->sum_exec_runtime_ns, 2'000'003u);
}

TEST(ParseSched, FirstOccurrenceWinsAndSimilarKeysAreNotConfused) {
  const std::string contents =
      "t (1, #threads: 1)\n" + kSeparator +
      "\n"
      "se.nr_migrations_cold                        :                   77\n"
      "se.sum_exec_runtime                          :             1.000000\n"
      "se.nr_migrations                             :                    2\n"
      "se.nr_migrations                             :                    3\n";
  const auto sched = ParseSched(contents);
  ASSERT_TRUE(sched.has_value());
  EXPECT_EQ(sched->nr_migrations, 2u);
  EXPECT_EQ(sched->sum_exec_runtime_ns, 1'000'000u);
}

TEST(ParseSched, NoFinalNewline) {
  const auto sched = ParseSched("t (1, #threads: 1)\n" + kSeparator +
                                "\nse.sum_exec_runtime : 0.000007\nse.nr_migrations : 9");
  ASSERT_TRUE(sched.has_value());
  EXPECT_EQ(sched->nr_migrations, 9u);
  EXPECT_EQ(sched->sum_exec_runtime_ns, 7u);
}

}  // namespace
}  // namespace migwatch

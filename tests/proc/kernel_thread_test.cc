#include "migwatch/kernel/proc/kernel_thread.h"

#include <gtest/gtest.h>

namespace migwatch {
namespace {

TEST(KernelThreadLabel, Table) {
  struct Case {
    std::string_view comm;
    std::string_view label;
  };
  const Case cases[] = {
      {"kworker/1:2H", "kworker"},
      {"kworker/u8:0-ext4-rsv-conversion", "kworker"},
      {"kworker/R-rcu_g", "kworker"},
      {"cpuhp/1", "cpuhp"},
      {"migration/0", "migration"},
      {"ksoftirqd/12", "ksoftirqd"},
      {"irq/24-ahci", "irq"},
      {"jbd2/sda1-8", "jbd2"},
      {"kthreadd", "kthreadd"},
      {"rcu_preempt", "rcu_preempt"},
      {"/", ""},
      {"", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.comm);
    EXPECT_EQ(KernelThreadLabel(c.comm), c.label);
  }
}

TEST(IsStopperThreadName, Table) {
  struct Case {
    std::string_view comm;
    bool stopper;
  };
  const Case cases[] = {
      {"migration/0", true},
      {"migration/1", true},
      {"migration/12345", true},
      {"migration/", false},
      {"migration", false},
      {"migration/1a", false},
      {"migration/-1", false},
      {"migration/ 1", false},
      {"migration/1/2", false},
      {"Migration/0", false},
      {"xmigration/0", false},
      {"cpuhp/0", false},
      {"", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.comm);
    EXPECT_EQ(IsStopperThreadName(c.comm), c.stopper);
  }
}

}  // namespace
}  // namespace migwatch

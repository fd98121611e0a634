#include "support/count_check.h"

#include "migwatch/kernel/proc/sched.h"
#include "support/clock.h"
#include "support/exposition.h"

namespace migwatch::testing {

CountCheck CompareProcessCount(int port, pid_t pid, const std::string& name, int attempts) {
  CountCheck c;
  for (int attempt = 0; attempt < attempts && !c.exact; ++attempt) {
    if (attempt) Pause(0.1);
    auto before = ReadLiveThreadMigrations(pid);
    Exposition e = Scrape(port);
    auto after = ReadLiveThreadMigrations(pid);
    if (!before || !after) break;
    c.kernel = *after;
    c.migwatch = Sum(e, "migwatch_process_migrations_total", {"process=\"" + name + "\""});
    // Events the kernel did not run the migration program for are the only
    // shortfall allowed, and they are counted.
    c.missed = Sum(e, "migwatch_bpf_program_misses_total", {"program=\"sched_migrate_task_btf\""}) +
               Sum(e, "migwatch_bpf_program_misses_total", {"program=\"sched_migrate_task_raw\""});
    const double kernel = static_cast<double>(c.kernel);
    c.exact = *before == *after && c.migwatch <= kernel && kernel - c.migwatch <= c.missed;
  }
  return c;
}

}  // namespace migwatch::testing

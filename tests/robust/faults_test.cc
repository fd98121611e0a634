// Faults: SIGKILL in the middle of a storm leaves no BPF program or link
// behind and a restart counts exactly again; SIGTERM ends the daemon cleanly
// within a second, while a storm runs and scrapes keep coming.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "robust.h"

namespace migwatch::testing {
namespace {

// Runs until the test ends (the Subprocess kills it).
Subprocess EndlessStorm(const std::string& name) {
  return Subprocess(kWorkload, {"mw_workload", "affinity-storm", "--flips", "1000000000", "--name", name});
}

std::set<uint32_t> Ids(const std::vector<BpfObject>& objects) {
  std::set<uint32_t> ids;
  for (const auto& o : objects) ids.insert(o.id);
  return ids;
}

TEST(Faults, SigkillDuringAStormLeavesNothingBehindAndARestartCountsExactly) {
  MIGWATCH_REQUIRE_BPF();
  const std::set<uint32_t> known = Ids(LeftBehind({}, 0));
  Subprocess storm = EndlessStorm("mwr-kill-storm");
  ASSERT_TRUE(storm.ValueOf("spinner_tid"));
  {
    Daemon d({kMigwatch, "--web.listen-address=127.0.0.1:0"});
    ASSERT_TRUE(d.WaitReady()) << d.Log();
    std::vector<BpfObject> before = MigwatchBpfObjects();
    const std::set<uint32_t> held = HeldBy(before, d.pid());
    // Programs and their links: what a leak would leave.
    EXPECT_GE(held.size(), 4u) << Describe(before);
    Exposition e = Scrape(d.port());
    EXPECT_GT(Sum(e, "migwatch_migrations_total"), 0);
    Finished f = d.Stop(SIGKILL);
    EXPECT_EQ(f.signal, SIGKILL);
    std::vector<BpfObject> left = LeftBehind(known);
    EXPECT_EQ(Describe(left), "none");
    std::set<uint32_t> still;
    for (uint32_t id : Ids(MigwatchBpfObjects()))
      if (held.count(id)) still.insert(id);
    EXPECT_TRUE(still.empty()) << still.size() << " of the killed daemon's " << held.size() << " objects remain";
    std::printf("SIGKILL during a storm: the daemon held %zu programs and links; %zu remain, %zu orphans\n",
                held.size(), still.size(), left.size());
  }

  Daemon d({kMigwatch, "--web.listen-address=127.0.0.1:0", "--labels.cap=1000"});
  ASSERT_TRUE(d.WaitReady()) << d.Log();
  NamedProgram workload(kWorkload, "mwr-restarted");
  Subprocess counted(workload.path(), {"mwr-restarted", "--hold", "affinity-storm", "--flips", "20000"});
  ASSERT_TRUE(counted.ValueOf("spinner_tid"));
  counted.Send("go");
  ASSERT_TRUE(counted.ValueOf("flips"));
  CountCheck c = CompareProcessCount(d.port(), counted.pid(), "mwr-restarted");
  EXPECT_TRUE(c.exact) << "migwatch " << c.migwatch << ", kernel " << c.kernel;
  EXPECT_GE(c.kernel, 20000u);
  std::printf("after the restart: migwatch %.0f, kernel se.nr_migrations %lu\n", c.migwatch, c.kernel);
  Finished stopped = d.Stop(SIGTERM);
  EXPECT_EQ(stopped.exit_code, 0) << stopped.output;
}

TEST(Faults, SigtermDuringAStormAndScrapesEndsCleanlyWithinASecond) {
  MIGWATCH_REQUIRE_BPF();
  Subprocess storm = EndlessStorm("mwr-term-storm");
  ASSERT_TRUE(storm.ValueOf("spinner_tid"));
  const std::set<uint32_t> known = Ids(LeftBehind({}, 0));
  std::vector<double> seconds;
  for (int round = 0; round < 3; ++round) {
    Daemon d({kMigwatch, "--web.listen-address=127.0.0.1:0"});
    ASSERT_TRUE(d.WaitReady()) << d.Log();
    const int port = d.port();
    // Scrapers that go on through the shutdown: a response is complete, or
    // a 503, or the connection is refused; never a crash, another status or
    // half a body with 200.
    std::atomic<bool> stop{false};
    std::atomic<int> complete{0}, unavailable{0}, refused{0}, broken{0};
    std::vector<std::thread> scrapers;
    for (int i = 0; i < 4; ++i) {
      scrapers.emplace_back([&] {
        while (!stop.load()) {
          Response r = HttpGet(port, "/metrics", 5);
          std::string error;
          if (r.status == 200 && ParseExposition(r.body, &error))
            ++complete;
          else if (r.status == 503)
            ++unavailable;
          else if (r.status == 0)
            ++refused;
          else if (++broken == 1)
            ADD_FAILURE() << "status " << r.status << " " << r.error << " " << error << "\n" << r.body.substr(0, 300);
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    Finished f = d.Stop(SIGTERM, 10);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop.store(true);
    for (auto& t : scrapers) t.join();
    EXPECT_TRUE(f.exited) << "signal " << f.signal << "\n" << f.output;
    EXPECT_EQ(f.exit_code, 0) << f.output;
    // Signal, main loop, HTTP drain and civetweb's stop: the daemon's part.
    const auto serving_stopped = d.SecondsFromStopTo("stopped serving; detaching the probes");
    ASSERT_TRUE(serving_stopped) << f.output;
    EXPECT_LT(*serving_stopped, 1.0) << f.output;
    seconds.push_back(f.seconds);
    EXPECT_NE(f.output.find("shutting down"), std::string::npos);
    EXPECT_GT(complete.load(), 0);
    EXPECT_EQ(broken.load(), 0);
    EXPECT_EQ(Describe(LeftBehind(known)), "none");
    std::printf("SIGTERM round %d: serving stopped after %.3f s, exit %d after %.3f s; scrapes: %d complete, "
                "%d 503, %d refused, %d broken\n",
                round, *serving_stopped, f.exit_code, f.seconds, complete.load(), unavailable.load(),
                refused.load(), broken.load());
  }
  // The rest is the kernel detaching the links: each syscall tracepoint
  // link waits for an RCU grace period, which load on the machine (other
  // processes, not the daemon) stretches from tens to hundreds of
  // milliseconds. Under a second on a quiet machine; a hang fails here.
  for (double s : seconds) EXPECT_LT(s, 5.0);
}

}  // namespace
}  // namespace migwatch::testing

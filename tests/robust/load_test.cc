// Load: 50 concurrent scrapers for 30 seconds during a storm. Every response
// is a 200 with a complete exposition (it parses and ends with the last
// family), no counter ever goes backwards for a client, and the daemon's
// memory stays flat. civetweb serves with a fixed, small pool of worker
// threads, so the latency under this load is measured and reported.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "robust.h"

namespace migwatch::testing {
namespace {

constexpr int kScrapers = 50;
constexpr auto kDuration = std::chrono::seconds(30);

struct ClientResult {
  int responses = 0;
  std::vector<std::string> problems;  ///< first few only
  int problem_count = 0;
  std::vector<double> latencies;
};

TEST(Load, FiftyConcurrentScrapersForThirtySecondsDuringAStorm) {
  MIGWATCH_REQUIRE_BPF();
  Daemon d({kMigwatch, "--web.listen-address=127.0.0.1:0"});
  ASSERT_TRUE(d.WaitReady()) << d.Log();
  const int port = d.port();
  Subprocess storm(kWorkload, {"mw_workload", "affinity-storm", "--flips", "1000000000", "--name", "mwr-load-storm"});
  ASSERT_TRUE(storm.ValueOf("spinner_tid"));
  const Exposition reference = Scrape(port);
  ASSERT_FALSE(reference.families.empty());
  const std::string last_family = reference.families.back();

  std::atomic<bool> stop{false};
  std::vector<ClientResult> results(kScrapers);
  std::vector<std::thread> clients;
  for (int i = 0; i < kScrapers; ++i) {
    clients.emplace_back([&, i] {
      ClientResult& r = results[i];
      std::map<std::string, double> last;  // counter series -> value seen last
      auto problem = [&](std::string what) {
        if (++r.problem_count <= 3) r.problems.push_back(std::move(what));
      };
      while (!stop.load()) {
        Response response = HttpGet(port, "/metrics", 30);
        ++r.responses;
        r.latencies.push_back(response.seconds);
        if (response.status != 200) {
          problem("status " + std::to_string(response.status) + " " + response.error);
          continue;
        }
        std::string error;
        auto e = ParseExposition(response.body, &error);
        if (!e) {
          problem("does not parse: " + error);
          continue;
        }
        if (e->families.empty() || e->families.back() != last_family) problem("does not end with " + last_family);
        for (const auto& [series, value] : e->samples) {
          const std::string family = series.substr(0, series.find('{'));
          auto type = e->types.find(family);
          if (type == e->types.end() || type->second != "counter") continue;
          auto [it, first] = last.emplace(series, value);
          if (!first && value < it->second)
            problem(series + " went back from " + std::to_string(it->second) + " to " + std::to_string(value));
          it->second = value;
        }
      }
    });
  }
  // Memory once the load has settled in, and at the end.
  std::vector<uint64_t> rss;
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < kDuration) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    rss.push_back(RssBytes(d.pid()));
  }
  stop.store(true);
  for (auto& t : clients) t.join();

  int responses = 0, problems = 0;
  std::vector<double> latencies;
  for (const auto& r : results) {
    responses += r.responses;
    problems += r.problem_count;
    latencies.insert(latencies.end(), r.latencies.begin(), r.latencies.end());
    for (const auto& p : r.problems) ADD_FAILURE() << p;
  }
  EXPECT_EQ(problems, 0);
  EXPECT_GE(responses, kScrapers);
  std::sort(latencies.begin(), latencies.end());
  auto quantile = [&](double q) { return latencies[static_cast<size_t>(q * (latencies.size() - 1))]; };
  ASSERT_GE(rss.size(), 10u);
  const uint64_t settled = rss[4], peak_late = *std::max_element(rss.begin() + 4, rss.end());
  EXPECT_LT(peak_late, settled + (4u << 20)) << "RSS grew under steady load";
  std::printf("%d scrapers, %.0f s: %d responses (%.1f/s), %d problems; latency p50 %.1f ms, p99 %.1f ms, "
              "max %.1f ms; RSS %.1f MiB after 5 s, %.1f MiB peak after, %.1f MiB at the end\n",
              kScrapers, std::chrono::duration<double>(kDuration).count(), responses,
              responses / std::chrono::duration<double>(kDuration).count(), problems, quantile(0.5) * 1e3,
              quantile(0.99) * 1e3, latencies.back() * 1e3, settled / 1048576.0, peak_late / 1048576.0,
              rss.back() / 1048576.0);
  Finished f = d.Stop(SIGTERM);
  EXPECT_EQ(f.exit_code, 0) << f.output;
}

}  // namespace
}  // namespace migwatch::testing

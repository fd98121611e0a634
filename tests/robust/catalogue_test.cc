// The metrics contract against a real scrape: every family the endpoint
// serves is in the catalogue (daemon/export/catalogue.cc) with the same
// type, help and label names, and every catalogue entry is served.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>

#include "migwatch/export/catalogue.h"
#include "robust.h"

namespace migwatch::testing {
namespace {

// "# HELP name text" lines of a scrape, text unescaped.
std::map<std::string, std::string> Helps(const std::string& body) {
  std::map<std::string, std::string> helps;
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# HELP ", 0) != 0) continue;
    const size_t space = line.find(' ', 7);
    std::string text, escaped = line.substr(space + 1);
    for (size_t i = 0; i < escaped.size(); ++i) {
      if (escaped[i] == '\\' && i + 1 < escaped.size()) {
        ++i;
        text += escaped[i] == 'n' ? '\n' : escaped[i];
      } else {
        text += escaped[i];
      }
    }
    helps[line.substr(7, space - 7)] = text;
  }
  return helps;
}

// The label names of a printed series, `name{a="x",b="y"}` -> {a, b}.
std::vector<std::string> LabelNames(const std::string& series) {
  std::vector<std::string> names;
  size_t at = series.find('{');
  while (at != std::string::npos && at + 1 < series.size() && series[at + 1] != '}') {
    const size_t equals = series.find('=', at + 1);
    names.push_back(series.substr(at + 1, equals - at - 1));
    // Skip the quoted value, escapes included.
    size_t i = equals + 2;
    while (i < series.size() && series[i] != '"') i += series[i] == '\\' ? 2 : 1;
    at = i + 1 < series.size() && series[i + 1] == ',' ? i + 1 : std::string::npos;
  }
  return names;
}

TEST(Catalogue, AScrapeServesExactlyTheCatalogue) {
  MIGWATCH_REQUIRE_BPF();
  Daemon d({kMigwatch, "--web.listen-address=127.0.0.1:0"});
  ASSERT_TRUE(d.WaitReady()) << d.Log();
  // A VM whose live migration runs, and flips of its vCPUs: nearly every
  // family has series to show its label names.
  NamedProgram qemu(kWorkload, "qemu-system-x86_64");
  Subprocess vm(qemu.path(), {"qemu-system-x86_64", "-name", "guest=catalogue-vm,debug-threads=on"});
  ASSERT_TRUE(vm.ValueOf("migration_tid"));
  vm.Send("flip 200");
  ASSERT_TRUE(vm.ValueOf("flipped"));
  HttpGet(d.port());  // the exposer's own families count from the first scrape
  Response r = HttpGet(d.port());
  ASSERT_EQ(r.status, 200) << r.error;
  std::string error;
  auto e = ParseExposition(r.body, &error);
  ASSERT_TRUE(e) << error;
  const auto helps = Helps(r.body);

  std::set<std::string> served(e->families.begin(), e->families.end()), catalogued;
  std::vector<std::string> empty;
  for (const auto& spec : Catalogue()) {
    const std::string name(spec.name);
    catalogued.insert(name);
    SCOPED_TRACE(name);
    if (!served.count(name)) {
      ADD_FAILURE() << "in the catalogue, not served";
      continue;
    }
    EXPECT_EQ(e->types.at(name), TypeName(spec.type));
    EXPECT_EQ(helps.count(name) ? helps.at(name) : "(no HELP)", spec.help);
    size_t series = 0;
    for (const auto& [printed, value] : e->samples) {
      const std::string family = printed.substr(0, printed.find('{'));
      const bool own = family == name;
      const bool summary_part = spec.type == prometheus::MetricType::Summary &&
                                (family == name + "_sum" || family == name + "_count");
      if (!own && !summary_part) continue;
      ++series;
      std::vector<std::string> expected;
      if (own)
        for (auto label : spec.labels) expected.emplace_back(label);
      EXPECT_EQ(LabelNames(printed), expected) << printed;
    }
    // Served empty (prometheus-cpp prints the header alone): the label
    // names are checked wherever a series shows them.
    if (!series) empty.push_back(name);
  }
  for (const auto& name : served) EXPECT_TRUE(catalogued.count(name)) << name << " is served but not in the catalogue";
  std::printf("%zu families served, %zu in the catalogue, %zu series; without a series:", served.size(),
              catalogued.size(), e->samples.size());
  for (const auto& name : empty) std::printf(" %s", name.c_str());
  std::printf("\n");
  vm.Send("quit");
  vm.Wait();
  Finished f = d.Stop(SIGTERM);
  EXPECT_EQ(f.exit_code, 0) << f.output;
}

}  // namespace
}  // namespace migwatch::testing

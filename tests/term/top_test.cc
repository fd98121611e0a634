// migwatch top as the operator sees it: in a real terminal (tmux) during a
// storm of known origin, through resizes, and as plain text without one.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include "support/clock.h"
#include "support/names.h"
#include "support/process.h"
#include "support/require.h"
#include "support/text.h"
#include "tmux.h"
#include "top_view.h"

namespace migwatch::testing {
namespace {

std::string ShellQuote(const std::string& s) {
  std::string quoted = "'";
  for (char c : s) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Where the shell in the tmux pane writes top's exit status.
class StatusFile {
 public:
  StatusFile() : path_(std::filesystem::temp_directory_path() / (UniqueName("migwatch-top-status-") + ".txt")) {}
  ~StatusFile() { std::filesystem::remove(path_); }
  // `command`, then its exit status into the file.
  std::string Wrap(const std::string& command) const { return command + "; echo $? > " + ShellQuote(path_); }
  std::string Read() const {
    std::ifstream in(path_);
    std::string status;
    std::getline(in, status);
    return status;
  }

 private:
  std::string path_;
};

std::string TopCommand(const std::string& args) {
  // Logs would go to the pane before the screen starts; they are not the view.
  return ShellQuote(MIGWATCH_PATH) + " top " + args + " 2>/dev/null";
}

bool WaitUntil(const std::function<bool()>& pred, double timeout_s) {
  for (double waited = 0; !pred(); waited += 0.1) {
    if (waited >= timeout_s) return false;
    Pause(0.1);
  }
  return true;
}

// A storm from a process of its own name, flipping a running thread
// between two CPUs until the test ends (the destructor kills it).
Subprocess Storm(const std::string& name) {
  return Subprocess(MW_WORKLOAD_PATH, {"mw_workload", "affinity-storm", "--while-running", "--flips", "100000000",
                                       "--name", name});
}

TEST(Top, StormLeadsTheLiveViewAndQQuits) {
  MIGWATCH_REQUIRE_BPF();
  const std::string name = UniqueName("mwtop");
  StatusFile status;
  Tmux tmux(status.Wrap(TopCommand("-d 0.5")), 120, 45);
  std::vector<std::string> pane;
  ASSERT_TRUE(tmux.WaitForPane([](const auto& p) { return HasTable(p, "PROCESS"); }, 60, &pane)) << Join(pane);

  Subprocess storm = Storm(name);
  ASSERT_TRUE(storm.ValueOf("spinner_tid"));
  // The storm's process moves most and asks for all the stopper work, on
  // both CPUs it flips between.
  const bool storm_on_top = tmux.WaitForPane(
      [&](const auto& p) {
        const auto processes = TableRows(p, "PROCESS"), requesters = TableRows(p, "STOPPER REQUESTER");
        return !processes.empty() && Fields(processes[0])[0] == name && !requesters.empty() &&
               Fields(requesters[0])[0] == name && CpusWithStopperTime(TableRows(p, "CPU")) >= 2;
      },
      30, &pane);
  EXPECT_TRUE(storm_on_top) << Join(pane);
  EXPECT_EQ(pane[0].rfind("migwatch top - ", 0), 0u) << Join(pane);
  std::printf("%s", Join(pane).c_str());

  tmux.SendKeys("q");
  EXPECT_TRUE(WaitUntil([&] { return !tmux.Running(); }, 10)) << "top still runs after q";
  EXPECT_EQ(status.Read(), "0");
}

TEST(Top, SortKeysReorderTheProcessList) {
  MIGWATCH_REQUIRE_BPF();
  StatusFile status;
  Tmux tmux(status.Wrap(TopCommand("-d 0.3")), 120, 60);
  std::vector<std::string> pane;
  ASSERT_TRUE(tmux.WaitForPane([](const auto& p) { return HasTable(p, "PROCESS"); }, 60, &pane)) << Join(pane);
  // Processes enough to sort: each of these moves once.
  Subprocess names(MW_WORKLOAD_PATH, {"mw_workload", "names", "--count", "20", "--prefix", UniqueName("mwsort")});
  ASSERT_TRUE(names.ValueOf("processes"));
  // Sorted by name, every process seen so far is listed in name order.
  tmux.SendKeys("n");
  auto names_sorted = [](const std::vector<std::string>& p) {
    const auto rows = TableRows(p, "PROCESS");
    if (rows.size() < 2 || p.size() < 3 || p[2].find("name*") == std::string::npos) return false;
    for (size_t i = 1; i < rows.size(); ++i)
      if (Fields(rows[i - 1])[0] > Fields(rows[i])[0]) return false;
    return true;
  };
  EXPECT_TRUE(tmux.WaitForPane(names_sorted, 10, &pane)) << Join(pane);
  // Sorted by total, the TOTAL column (the third from the end: MAIN REASON
  // is one or two fields) never grows down the list.
  tmux.SendKeys("t");
  auto totals_sorted = [](const std::vector<std::string>& p) {
    const auto rows = TableRows(p, "PROCESS");
    if (rows.size() < 2 || p.size() < 3 || p[2].find("total since start*") == std::string::npos) return false;
    auto total = [](const std::string& row) {
      // NAME may hold blanks: read TOTAL at its fixed column (20 + 1 + 13 + 1, 12 wide).
      return std::stoull(row.substr(35, 12));
    };
    for (size_t i = 1; i < rows.size(); ++i)
      if (total(rows[i - 1]) < total(rows[i])) return false;
    return true;
  };
  EXPECT_TRUE(tmux.WaitForPane(totals_sorted, 10, &pane)) << Join(pane);
  tmux.SendKeys("q");
  EXPECT_TRUE(WaitUntil([&] { return !tmux.Running(); }, 10));
  EXPECT_EQ(status.Read(), "0");
}

TEST(Top, FollowsTerminalResizes) {
  MIGWATCH_REQUIRE_BPF();
  StatusFile status;
  Tmux tmux(status.Wrap(TopCommand("-d 0.3")), 100, 12);
  std::vector<std::string> pane;
  ASSERT_TRUE(tmux.WaitForPane([](const auto& p) { return HasTable(p, "CPU"); }, 60, &pane)) << Join(pane);
  // Twelve lines hold the header and the first tables, not the last one.
  EXPECT_FALSE(HasTable(pane, "QEMU LIVE MIGRATION")) << Join(pane);

  // Taller: the view is laid out again and shows every table.
  tmux.Resize(120, 50);
  EXPECT_TRUE(tmux.WaitForPane([](const auto& p) { return HasTable(p, "QEMU LIVE MIGRATION"); }, 5, &pane))
      << Join(pane);

  // Narrow and short: still redrawn every interval (the clock in the title
  // moves on), every line cut to the width.
  tmux.Resize(40, 8);
  const std::string title = tmux.Capture()[0];
  auto redrawn_narrow = [&](const std::vector<std::string>& p) {
    if (p.empty() || p[0] == title || p[0].rfind("migwatch top - ", 0) != 0) return false;
    for (const auto& l : p)
      if (l.size() > 40) return false;
    return true;
  };
  EXPECT_TRUE(tmux.WaitForPane(redrawn_narrow, 5, &pane)) << Join(pane);

  // Smaller than anything useful, then back: it survives and recovers.
  tmux.Resize(4, 2);
  Pause(1);
  EXPECT_TRUE(tmux.Running());
  tmux.Resize(100, 40);
  EXPECT_TRUE(tmux.WaitForPane([](const auto& p) { return HasTable(p, "PROCESS"); }, 5, &pane)) << Join(pane);

  tmux.SendKeys("q");
  EXPECT_TRUE(WaitUntil([&] { return !tmux.Running(); }, 10));
  EXPECT_EQ(status.Read(), "0");
}

// Not a terminal: plain reports, one per interval, with a fake QEMU VM
// whose vCPU threads are moved and whose live migration thread runs.
TEST(Top, PlainTextWhenStdoutIsNotATerminal) {
  MIGWATCH_REQUIRE_BPF();
  const std::string vm = UniqueName("mwtopvm");
  Subprocess fake_vm(MW_WORKLOAD_PATH, {"qemu-system-x86_64", "-name", "guest=" + vm + ",debug-threads=on"});
  ASSERT_TRUE(fake_vm.ValueOf("migration_tid"));

  Process top({MIGWATCH_PATH, "top", "-d", "0.5", "-n", "4"});
  ASSERT_TRUE(top.WaitForOutput("migwatch top - ", 60)) << top.Stderr();
  fake_vm.Send("flip 2000");
  ASSERT_TRUE(fake_vm.ValueOf("flipped"));
  ASSERT_EQ(top.Wait(60), 0) << top.Stderr();
  const std::string out = top.Stdout();
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "terminal escape sequences in plain output";

  const auto reports = Reports(Lines(out));
  ASSERT_EQ(reports.size(), 4u) << out;
  bool vm_moved = false;
  for (const auto& report : reports) {
    // Every CPU the kernel may have has its row.
    EXPECT_EQ(TableRows(report, "CPU").size(), static_cast<size_t>(libbpf_num_possible_cpus())) << Join(report);
    // The fake VM's live migration thread runs the whole time.
    const auto live = TableRows(report, "QEMU LIVE MIGRATION");
    ASSERT_EQ(live.size(), 1u) << Join(report);
    EXPECT_EQ(Fields(live[0]), (std::vector<std::string>{vm, "source", "1", Fields(live[0]).back()})) << Join(report);
    for (const auto& row : TableRows(report, "VM")) vm_moved |= Fields(row)[0] == vm && Fields(row)[1] != "0";
  }
  EXPECT_TRUE(vm_moved) << "the fake VM's flips never showed in the VM list:\n" << out;
  std::printf("%s", Join(reports.back()).c_str());
  fake_vm.Send("quit");
  EXPECT_EQ(fake_vm.Wait(), 0);
}

// --batch in a terminal: plain reports scroll by and top ends by itself.
TEST(Top, BatchFlagInATerminal) {
  MIGWATCH_REQUIRE_BPF();
  Tmux tmux(TopCommand("--batch -d 0.3 -n 2") + "; echo status=$?; sleep 600", 120, 120);
  std::vector<std::string> pane;
  ASSERT_TRUE(tmux.WaitForPane(
      [](const auto& p) { return std::find(p.begin(), p.end(), "status=0") != p.end(); }, 60, &pane))
      << Join(pane);
  EXPECT_EQ(Reports(pane).size(), 2u) << Join(pane);
}

}  // namespace
}  // namespace migwatch::testing

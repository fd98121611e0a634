// migwatch trace against the kernel's own count: every migration of the
// traced thread is one line or one counted drop, never both, never neither.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <regex>

#include "migwatch/kernel/proc/sched.h"
#include "migwatch/workload/workload.h"
#include "support/kernel_truth.h"
#include "support/names.h"
#include "support/process.h"
#include "support/require.h"
#include "support/text.h"
#include "top_view.h"

namespace migwatch::testing {
namespace {

struct Summary {
  uint64_t recorded = 0, printed = 0, filtered = 0, dropped = 0, ring_full = 0, over_rate = 0, max_rate = 0;
};

struct TraceOutput {
  std::string header;
  std::vector<std::string> events;
  std::optional<Summary> summary;
};

TraceOutput Parse(const std::string& out) {
  static const std::regex summary_re(
      R"(# (\d+) migrations recorded: (\d+) printed, (\d+) filtered out, (\d+) dropped: (\d+) ring buffer full)"
      R"(( \(before filtering\))?, (\d+) over --max-rate (\d+)/s)");
  TraceOutput parsed;
  for (const auto& line : Lines(out)) {
    std::smatch m;
    if (std::regex_match(line, m, summary_re)) {
      parsed.summary = Summary{std::stoull(m[1]), std::stoull(m[2]), std::stoull(m[3]), std::stoull(m[4]),
                               std::stoull(m[5]), std::stoull(m[7]), std::stoull(m[8])};
    } else if (line.rfind("# tracing", 0) == 0) {
      parsed.header = line;
    } else if (line.rfind("TIME ", 0) != 0 && !line.empty()) {
      parsed.events.push_back(line);
    }
  }
  return parsed;
}

// An event line: TIME TASK/TID PROCESS VM SRC->DST REASON MOVED-BY. TIME,
// TASK/TID and PROCESS have fixed widths (a comm may hold blanks: "CPU 0/KVM").
struct Event {
  std::string time, task, vm, reason;
  int src = -1, dst = -1;
};

std::string Trim(const std::string& s) {
  const size_t start = s.find_first_not_of(' '), end = s.find_last_not_of(' ');
  return start == std::string::npos ? "" : s.substr(start, end - start + 1);
}

Event ParseEvent(const std::string& line) {
  Event e;
  if (line.size() < 58) return e;
  e.time = line.substr(0, 15);
  e.task = Trim(line.substr(16, 24));
  const auto rest = Fields(line.substr(58));
  if (rest.size() < 4) return e;
  e.vm = rest[0];
  std::sscanf(rest[1].c_str(), "%d->%d", &e.src, &e.dst);
  e.reason = rest[2];
  return e;
}

// A trace started and attached (its column header printed).
std::unique_ptr<Process> StartTrace(std::vector<std::string> args) {
  args.insert(args.begin(), {MIGWATCH_PATH, "trace"});
  auto trace = std::make_unique<Process>(args);
  EXPECT_TRUE(trace->WaitForOutput("MOVED BY", 60)) << trace->Stderr();
  return trace;
}

// Interrupts a trace as Ctrl-C does and returns what it printed.
TraceOutput Stop(Process& trace) {
  trace.Signal(SIGINT);
  EXPECT_EQ(trace.Wait(120), 0) << trace.Stderr();
  TraceOutput out = Parse(trace.Stdout());
  EXPECT_TRUE(out.summary) << "no summary line:\n" << trace.Stdout();
  if (out.summary) {
    EXPECT_EQ(out.summary->printed, out.events.size());
  }
  return out;
}

// A held affinity storm: its spinner exists and waits for "go".
struct HeldStorm {
  explicit HeldStorm(uint64_t flips, const std::string& name = UniqueName("mwtrace"))
      : name(name),
        process(MW_WORKLOAD_PATH, {"mw_workload", "--hold", "affinity-storm", "--while-running", "--flips",
                                   std::to_string(flips), "--name", name}),
        flips(flips) {
    auto tid_text = process.ValueOf("spinner_tid");
    EXPECT_TRUE(tid_text && process.ValueOf("waiting"));
    tid = tid_text ? std::stoi(*tid_text) : -1;
  }
  uint64_t Migrations() { return ReadNrMigrations(process.pid(), tid).value_or(0); }
  void Run() {
    process.Send("go");
    EXPECT_EQ(process.ValueOf("flips"), std::to_string(flips));
    EXPECT_TRUE(process.ValueOf("waiting"));
  }
  ~HeldStorm() {
    process.Send("quit");
    EXPECT_EQ(process.Wait(), 0);
  }
  std::string name;
  Subprocess process;
  uint64_t flips;
  pid_t tid = -1;
};

TEST(Trace, OneLinePerMigrationOfTheTracedThread) {
  MIGWATCH_REQUIRE_BPF();
  HeldStorm storm(5000);
  ASSERT_GT(storm.tid, 0);
  auto trace = StartTrace({"--pid", std::to_string(storm.tid), "--max-rate", "10000000"});
  const uint64_t before = storm.Migrations();
  storm.Run();
  const uint64_t moved = storm.Migrations() - before;
  const TraceOutput out = Stop(*trace);
  ASSERT_TRUE(out.summary);
  const Summary& s = *out.summary;
  std::printf("kernel se.nr_migrations %lu; trace: %lu lines, %lu dropped (%lu ring buffer full)\n", moved,
              s.printed, s.dropped, s.ring_full);
  EXPECT_GE(moved, storm.flips);
  EXPECT_EQ(s.printed + s.dropped, moved);
  EXPECT_EQ(s.filtered, 0u);
  EXPECT_EQ(s.over_rate, 0u);
  const std::string task = storm.name + "/" + std::to_string(storm.tid);
  for (const auto& line : out.events) {
    const Event e = ParseEvent(line);
    ASSERT_EQ(e.task, task) << line;
    ASSERT_TRUE(e.src >= 0 && e.dst >= 0 && e.src != e.dst) << line;
  }
}

TEST(Trace, MaxRateCapsLinesPerSecondAndCountsTheRest) {
  MIGWATCH_REQUIRE_BPF();
  HeldStorm storm(5000);
  ASSERT_GT(storm.tid, 0);
  auto trace = StartTrace({"--pid", std::to_string(storm.tid), "--max-rate", "50"});
  const uint64_t before = storm.Migrations();
  storm.Run();
  const uint64_t moved = storm.Migrations() - before;
  const TraceOutput out = Stop(*trace);
  ASSERT_TRUE(out.summary);
  const Summary& s = *out.summary;
  std::printf("kernel se.nr_migrations %lu; trace: %lu lines, %lu over --max-rate, %lu ring buffer full\n", moved,
              s.printed, s.over_rate, s.ring_full);
  EXPECT_NE(out.header.find("at most 50 lines per second"), std::string::npos) << out.header;
  EXPECT_EQ(s.max_rate, 50u);
  EXPECT_GT(s.over_rate, 0u);
  EXPECT_EQ(s.printed + s.dropped, moved);
  EXPECT_EQ(s.dropped, s.ring_full + s.over_rate);
  std::map<std::string, int> per_second;  // HH:MM:SS -> lines
  for (const auto& line : out.events) ++per_second[ParseEvent(line).time.substr(0, 8)];
  for (const auto& [second, lines] : per_second) EXPECT_LE(lines, 50) << "at " << second;
}

// A reader that falls behind loses records, never blocks the kernel, and
// counts every loss; what the buffer held is still printed before the end.
TEST(Trace, FullRingBufferDropsAreCountedAndTheRestDelivered) {
  MIGWATCH_REQUIRE_BPF();
  // More migrations than the trace ring buffer holds (4 MiB, 80 bytes each).
  HeldStorm storm(80000);
  ASSERT_GT(storm.tid, 0);
  auto trace = StartTrace({"--pid", std::to_string(storm.tid), "--max-rate", "10000000"});
  trace->Signal(SIGSTOP);
  const uint64_t before = storm.Migrations();
  storm.Run();
  const uint64_t moved = storm.Migrations() - before;
  trace->Signal(SIGCONT);
  const TraceOutput out = Stop(*trace);
  ASSERT_TRUE(out.summary);
  const Summary& s = *out.summary;
  std::printf("kernel se.nr_migrations %lu; trace: %lu lines, %lu ring buffer full\n", moved, s.printed,
              s.ring_full);
  EXPECT_GT(s.ring_full, 0u);
  EXPECT_GT(s.printed, 40000u) << "the records in the buffer were not all delivered";
  EXPECT_EQ(s.printed + s.dropped, moved);
  EXPECT_EQ(s.recorded, moved);
}

TEST(Trace, CommFilterKeepsExactlyThatCommsMigrations) {
  MIGWATCH_REQUIRE_BPF();
  // Both threads of the storm's process carry its name: the flipper and the
  // spinner. Its mover is a process of another name.
  HeldStorm storm(3000);
  ASSERT_GT(storm.tid, 0);
  auto trace = StartTrace({"--comm", storm.name, "--max-rate", "10000000"});
  const uint64_t before = ReadLiveThreadMigrations(storm.process.pid()).value_or(0);
  storm.Run();
  const uint64_t moved = ReadLiveThreadMigrations(storm.process.pid()).value_or(0) - before;
  const TraceOutput out = Stop(*trace);
  ASSERT_TRUE(out.summary);
  const Summary& s = *out.summary;
  std::printf("kernel se.nr_migrations %lu; trace --comm: %lu lines, %lu filtered out\n", moved, s.printed,
              s.filtered);
  ASSERT_EQ(s.ring_full, 0u) << "records lost before filtering: the count cannot be compared";
  EXPECT_EQ(s.printed, moved);
  EXPECT_EQ(s.over_rate, 0u);
  for (const auto& line : out.events) ASSERT_EQ(ParseEvent(line).task.rfind(storm.name + "/", 0), 0u) << line;
}

TEST(Trace, VmFilterKeepsExactlyThatVmsMigrations) {
  MIGWATCH_REQUIRE_BPF();
  const std::string vm = UniqueName("mwtracevm");
  Subprocess fake_vm(MW_WORKLOAD_PATH, {"qemu-system-x86_64", "-name", "guest=" + vm + ",debug-threads=on"});
  auto migration_tid = fake_vm.ValueOf("migration_tid");
  ASSERT_TRUE(migration_tid);
  // Only the flips may move the VM's threads: its main thread and its live
  // migration thread sleep and wake, and would move at will unless pinned.
  const int cpu = workload::AllowedCpus()[0];
  ASSERT_TRUE(workload::PinThread(fake_vm.pid(), cpu) && workload::PinThread(std::stoi(*migration_tid), cpu));
  auto trace = StartTrace({"--vm", vm, "--max-rate", "10000000"});
  const uint64_t before = ReadLiveThreadMigrations(fake_vm.pid()).value_or(0);
  fake_vm.Send("flip 1000");
  ASSERT_TRUE(fake_vm.ValueOf("flipped"));
  const uint64_t moved = ReadLiveThreadMigrations(fake_vm.pid()).value_or(0) - before;
  const TraceOutput out = Stop(*trace);
  ASSERT_TRUE(out.summary);
  const Summary& s = *out.summary;
  std::printf("kernel se.nr_migrations %lu; trace --vm: %lu lines\n", moved, s.printed);
  ASSERT_EQ(s.ring_full, 0u) << "records lost before filtering: the count cannot be compared";
  EXPECT_GE(moved, 2000u);
  EXPECT_EQ(s.printed, moved);
  for (const auto& line : out.events) ASSERT_EQ(ParseEvent(line).vm, vm) << line;
  fake_vm.Send("quit");
  EXPECT_EQ(fake_vm.Wait(), 0);
}

// --reason and --cpu print exactly the lines of a trace without them (of
// the storm's two threads: checked against the kernel above) that match
// them. The spinner moves for affinity, the flipper when its mover wakes it.
TEST(Trace, ReasonAndCpuFiltersSelectFromTheFullStream) {
  MIGWATCH_REQUIRE_BPF();
  HeldStorm storm(3000);
  ASSERT_GT(storm.tid, 0);
  const int cpu = workload::AllowedCpus()[0];
  const int no_cpu = libbpf_num_possible_cpus();  // no CPU has this number
  auto trace = [&](std::vector<std::string> filter) {
    filter.insert(filter.end(), {"--comm", storm.name, "--max-rate", "10000000"});
    return StartTrace(filter);
  };
  auto all = trace({});
  auto affinity = trace({"--reason", "affinity"});
  auto on_cpu = trace({"--cpu", std::to_string(cpu)});
  auto on_no_cpu = trace({"--cpu", std::to_string(no_cpu)});
  storm.Run();
  const TraceOutput full = Stop(*all), by_reason = Stop(*affinity), by_cpu = Stop(*on_cpu),
                    by_no_cpu = Stop(*on_no_cpu);
  ASSERT_TRUE(full.summary && by_reason.summary && by_cpu.summary && by_no_cpu.summary);
  for (const auto* out : {&full, &by_reason, &by_cpu, &by_no_cpu}) ASSERT_EQ(out->summary->ring_full, 0u);
  uint64_t want_reason = 0, want_cpu = 0;
  for (const auto& line : full.events) {
    const Event e = ParseEvent(line);
    want_reason += e.reason == "affinity";
    want_cpu += e.src == cpu || e.dst == cpu;
  }
  std::printf("%zu lines; --reason affinity %zu (want %lu), --cpu %d %zu (want %lu), --cpu %d %zu (want 0)\n",
              full.events.size(), by_reason.events.size(), want_reason, cpu, by_cpu.events.size(), want_cpu, no_cpu,
              by_no_cpu.events.size());
  EXPECT_GT(full.events.size(), storm.flips);  // the spinner once per flip, the flipper too, mostly
  EXPECT_GE(want_reason, storm.flips);
  EXPECT_LT(want_reason, full.events.size()) << "every line has the reason: the filter was not exercised";
  EXPECT_EQ(by_reason.events.size(), want_reason);
  EXPECT_EQ(by_cpu.events.size(), want_cpu);
  EXPECT_EQ(by_no_cpu.events.size(), 0u);
  for (const auto& line : by_reason.events) ASSERT_EQ(ParseEvent(line).reason, "affinity") << line;
  for (const auto& line : by_cpu.events) {
    const Event e = ParseEvent(line);
    ASSERT_TRUE(e.src == cpu || e.dst == cpu) << line;
  }
}

}  // namespace
}  // namespace migwatch::testing

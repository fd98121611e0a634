// migwatch trace: one line per classified migration, while it happens.
//
// The BPF programs write a record per migration to the trace ring buffer
// only while a trace runs (Session::SetTracing), and with --pid only the
// records of that thread or process, so that the kernel copies nothing else.
// The other filters apply here. Nothing ever waits for this reader: a record
// that finds the ring buffer full is dropped and counted in the host stats
// (MW_DROP_TRACE_RINGBUF), and matching records beyond --max-rate in a second
// are counted instead of printed. The summary at exit adds it all up.
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "migwatch/cli/commands.h"
#include "migwatch/cli/process.h"
#include "migwatch/model/labels.h"
#include "migwatch/model/session.h"
#include "migwatch/kernel/maps.h"

namespace migwatch {
namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000;

std::string Comm(const char (&comm)[MW_COMM_LEN]) { return std::string(comm, strnlen(comm, MW_COMM_LEN)); }

uint64_t ClockNs(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSecond + ts.tv_nsec;
}

// Who made the move: the task that queued the stopper work, else the task
// the kernel ran when it moved the task (the waker for a wakeup, the
// sched_setaffinity caller). A move made from interrupt context, and the
// balancer's, is the kernel's, whatever task the interrupt found.
std::string MovedBy(const mw_migration_event& e) {
  if (MovedByKernel(e)) return "kernel";
  return Comm(e.requester_comm) + "/" + std::to_string(e.requester_pid);
}

class Tracer {
 public:
  Tracer(const TraceOptions& options, Session& session)
      : options_(options),
        session_(session),
        reason_(options.reason.empty() ? std::nullopt : ReasonFromName(options.reason)),
        // Record times are CLOCK_MONOTONIC (bpf_ktime_get_ns); lines show the wall clock.
        realtime_offset_ns_(ClockNs(CLOCK_REALTIME) - ClockNs(CLOCK_MONOTONIC)) {}

  static int Deliver(void* ctx, void* data, size_t size) {
    if (size >= sizeof(mw_migration_event) && static_cast<const mw_migration_event*>(data)->kind == MW_TRACE_MIGRATION)
      static_cast<Tracer*>(ctx)->OnEvent(*static_cast<const mw_migration_event*>(data));
    return 0;
  }

  void PrintHeader() const {
    std::string what = "# tracing migrations";
    if (options_.pid) what += " of tid/pid " + std::to_string(options_.pid);
    if (!options_.comm.empty()) what += ", comm " + options_.comm;
    if (!options_.vm.empty()) what += ", vm " + options_.vm;
    if (reason_) what += ", reason " + options_.reason;
    if (options_.cpu >= 0) what += ", from or to cpu " + std::to_string(options_.cpu);
    std::printf("%s; at most %u lines per second (--max-rate), the rest counted as dropped; Ctrl-C to stop\n",
                what.c_str(), options_.max_rate);
    std::printf("%-15s %24s %-16s %-12s %-10s %-14s %s\n", "TIME", "TASK/TID", "PROCESS", "VM", "CPU", "REASON",
                "MOVED BY");
    std::fflush(stdout);
  }

  // `ring_drops`: records the kernel could not write, ring buffer full.
  void PrintSummary(uint64_t ring_drops) const {
    // The kernel drops before the filters here see a record: with one of
    // them set, some of those drops would have been filtered out.
    const bool filtered_here = reason_ || !options_.comm.empty() || !options_.vm.empty() || options_.cpu >= 0;
    std::printf("# %lu migrations recorded: %lu printed, %lu filtered out, %lu dropped: %lu ring buffer full%s, "
                "%lu over --max-rate %u/s\n",
                received_ + ring_drops, printed_, filtered_, ring_drops + rate_limited_, ring_drops,
                filtered_here ? " (before filtering)" : "", rate_limited_, options_.max_rate);
    std::fflush(stdout);
  }

 private:
  bool Matches(const mw_migration_event& e, const ProcessIdentity& id) const {
    if (reason_ && e.reason != *reason_) return false;
    if (!options_.comm.empty() && Comm(e.comm) != options_.comm) return false;
    if (options_.cpu >= 0 && e.src_cpu != static_cast<uint32_t>(options_.cpu) &&
        e.dst_cpu != static_cast<uint32_t>(options_.cpu))
      return false;
    return options_.vm.empty() || id.vm == options_.vm;
  }

  // At most --max-rate lines stamped with the same second. The stamp is the
  // record's own time, so a backlog read late is limited like the storm
  // that made it.
  bool WithinRate(uint64_t wall_ns) {
    const uint64_t second = wall_ns / kNsPerSecond;
    if (second != rate_second_) {
      rate_second_ = second;
      printed_in_second_ = 0;
    }
    return printed_in_second_++ < options_.max_rate;
  }

  void OnEvent(const mw_migration_event& e) {
    ++received_;
    const ProcessIdentity id = session_.IdentityOf(e.tgid, Comm(e.comm));
    if (!Matches(e, id)) {
      ++filtered_;
      return;
    }
    const uint64_t wall_ns = e.ts_ns + realtime_offset_ns_;
    if (!WithinRate(wall_ns)) {
      ++rate_limited_;
      return;
    }
    const time_t seconds = static_cast<time_t>(wall_ns / kNsPerSecond);
    struct tm tm;
    localtime_r(&seconds, &tm);
    const std::string task = Comm(e.comm) + "/" + std::to_string(e.pid);
    const std::string cpus = std::to_string(e.src_cpu) + "->" + std::to_string(e.dst_cpu);
    std::printf("%02d:%02d:%02d.%06lu %24s %-16s %-12s %-10s %-14s %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
                (wall_ns % kNsPerSecond) / 1000, task.c_str(), id.name.c_str(),
                id.vm.empty() ? "-" : id.vm.c_str(), cpus.c_str(), std::string(ReasonName(e.reason)).c_str(),
                MovedBy(e).c_str());
    ++printed_;
  }

  const TraceOptions& options_;
  Session& session_;
  const std::optional<mw_reason> reason_;
  const uint64_t realtime_offset_ns_;
  uint64_t received_ = 0, printed_ = 0, filtered_ = 0, rate_limited_ = 0;
  uint64_t rate_second_ = 0, printed_in_second_ = 0;
};

uint64_t RingBufferDrops(const Probes& probes) {
  CounterSnapshot counters;
  ReadCounters(probes, &counters);
  return counters.host.drops[MW_DROP_TRACE_RINGBUF];
}

}  // namespace

int RunTrace(const TraceOptions& options) {
  CommonOptions common = options.common;
  common.probes.trace = true;
  common.probes.trace_pid = options.pid;
  std::string error;
  auto session = Session::Open(common, &error);
  if (!session) {
    spdlog::error("{}", error);
    return 1;
  }
  Tracer tracer(options, *session);
  ring_buffer* rb = ring_buffer__new(session->probes().trace_events_fd(), Tracer::Deliver, &tracer, nullptr);
  if (!rb) {
    spdlog::error("cannot open the trace ring buffer: {}", std::strerror(errno));
    return 1;
  }
  session->SetTracing(MW_TRACE_BIT(MW_TRACE_MIGRATION));
  tracer.PrintHeader();
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(options.duration_seconds));
  auto next_update = Clock::now() + std::chrono::seconds(1);
  int status = 0;
  while (!StopRequested()) {
    const int n = ring_buffer__poll(rb, 100);
    if (n < 0 && n != -EINTR) {
      spdlog::error("reading the trace ring buffer failed: {}", std::strerror(-n));
      status = 1;
      break;
    }
    if (n > 0) {
      std::fflush(stdout);
      // Let records gather before the next read: under a storm, reading
      // them in batches costs far less (here and in the kernel's wakeups)
      // than one wakeup per record, and the buffer holds 10 ms of five
      // million records a second.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!session->ConsumeEvents()) {
      status = 1;
      break;
    }
    const auto now = Clock::now();
    // Forgets exited processes, so that a reused pid gets its own name and
    // the process map does not fill up with the dead.
    if (now >= next_update) {
      session->Sweep();
      next_update = now + std::chrono::seconds(1);
    }
    if (options.duration_seconds > 0 && now >= deadline) break;
  }
  session->SetTracing(0);
  // What is still in the buffer was recorded: deliver it before the summary.
  if (const int n = ring_buffer__consume(rb); n < 0) {
    spdlog::error("reading the trace ring buffer failed: {}", std::strerror(-n));
    status = 1;
  }
  ring_buffer__free(rb);
  tracer.PrintSummary(RingBufferDrops(session->probes()));
  return status;
}

}  // namespace migwatch

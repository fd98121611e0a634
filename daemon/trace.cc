// migwatch trace: one line per classified migration, while it happens.
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "migwatch/commands.h"
#include "migwatch/labels.h"
#include "migwatch/session.h"
#include "migwatch/snapshot.h"

namespace migwatch {
namespace {

struct TraceState {
  const TraceOptions* options;
  Attributor* attributor;
  std::optional<mw_reason> reason;
  uint64_t received = 0, printed = 0, filtered = 0, rate_limited = 0;
  // One-second window for --max-rate.
  std::chrono::steady_clock::time_point window_start = std::chrono::steady_clock::now();
  uint64_t in_window = 0;
};

std::string Comm(const char (&comm)[MW_COMM_LEN]) { return std::string(comm, strnlen(comm, MW_COMM_LEN)); }

int OnEvent(void* ctx, void* data, size_t size) {
  auto* st = static_cast<TraceState*>(ctx);
  if (size < sizeof(mw_migration_event)) return 0;
  const auto& e = *static_cast<const mw_migration_event*>(data);
  ++st->received;
  const TraceOptions& o = *st->options;
  ProcessIdentity id = st->attributor->Identity(e.tgid);
  if ((st->reason && e.reason != *st->reason) || (!o.comm.empty() && Comm(e.comm) != o.comm) ||
      (o.cpu >= 0 && e.src_cpu != static_cast<uint32_t>(o.cpu) && e.dst_cpu != static_cast<uint32_t>(o.cpu)) ||
      (!o.vm.empty() && id.vm != o.vm)) {
    ++st->filtered;
    return 0;
  }
  auto now = std::chrono::steady_clock::now();
  if (now - st->window_start >= std::chrono::seconds(1)) {
    st->window_start = now;
    st->in_window = 0;
  }
  if (++st->in_window > o.max_rate) {
    ++st->rate_limited;
    return 0;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  localtime_r(&ts.tv_sec, &tm);
  std::string requester = e.requester_tgid == MW_KERNEL_TGID && e.requester_pid == MW_KERNEL_TGID
                              ? std::string("kernel")
                              : Comm(e.requester_comm) + "/" + std::to_string(e.requester_pid);
  std::printf("%02d:%02d:%02d.%06ld %16s/%-7u %-16s %-12s cpu %3u -> %-3u %-14s by %s\n", tm.tm_hour, tm.tm_min,
              tm.tm_sec, ts.tv_nsec / 1000, Comm(e.comm).c_str(), e.pid, id.name.c_str(),
              id.vm.empty() ? "-" : ("vm=" + id.vm).c_str(), e.src_cpu, e.dst_cpu,
              std::string(ReasonName(e.reason)).c_str(), requester.c_str());
  ++st->printed;
  return 0;
}

uint64_t KernelTraceDrops(const Probes& probes) {
  CounterSnapshot c;
  ReadCounters(probes, &c);
  return c.host.drops[MW_DROP_TRACE_RINGBUF];
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
  TraceState st{&options, &session->attributor(), {}};
  if (!options.reason.empty()) st.reason = ReasonFromName(options.reason);
  ring_buffer* rb =
      ring_buffer__new(bpf_map__fd(session->probes().trace_events_map()), OnEvent, &st, nullptr);
  if (!rb) {
    spdlog::error("cannot open the trace ring buffer: {}", std::strerror(errno));
    return 1;
  }
  std::printf("# tracing migrations%s; at most %u lines/s, the rest counted as dropped. Ctrl-C to stop.\n",
              options.pid ? (" of tid/pid " + std::to_string(options.pid)).c_str() : "", options.max_rate);
  std::printf("%-15s %24s %-16s %-12s %-14s %-14s %s\n", "TIME", "TASK/TID", "PROCESS", "VM", "CPU", "REASON",
              "MOVED BY");
  std::fflush(stdout);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(options.duration_seconds);
  int status = 0;
  while (!StopRequested()) {
    int n = ring_buffer__poll(rb, 100);
    if (n < 0 && n != -EINTR) {
      spdlog::error("reading the trace ring buffer failed: {}", std::strerror(-n));
      status = 1;
      break;
    }
    session->Poll(0);
    if (options.duration_seconds > 0 && std::chrono::steady_clock::now() >= deadline) break;
  }
  // What is still in the buffer was recorded: deliver it before the summary.
  ring_buffer__consume(rb);
  ring_buffer__free(rb);
  const uint64_t kernel_drops = KernelTraceDrops(session->probes());
  std::printf("# %lu events: %lu printed, %lu filtered out, dropped %lu (%lu ring buffer full, %lu over --max-rate)\n",
              st.received + kernel_drops, st.printed, st.filtered, kernel_drops + st.rate_limited, kernel_drops,
              st.rate_limited);
  std::fflush(stdout);
  return status;
}

}  // namespace migwatch

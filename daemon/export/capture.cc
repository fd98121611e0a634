#include "migwatch/export/capture.h"

#include <bpf/libbpf.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "migwatch/kernel/maps.h"
#include "migwatch/kernel/probes.h"
#include "migwatch/model/labels.h"
#include "migwatch/model/session.h"

namespace migwatch {
namespace {

constexpr std::string_view kCapturePrefix = "migwatch-capture-";
constexpr std::string_view kCaptureSuffix = ".json";
// Records read by one Drain() at most: more than the ring buffer holds.
constexpr uint64_t kRecordsPerDrain = 1 << 17;
// The process whose threads are the CPU tracks: a trace viewer groups
// tracks by pid, and this one stands for the host.
constexpr int kHostPid = 1;

uint64_t ClockNs(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// A JSON string of `text`. Bytes outside printable ASCII are escaped one by
// one: a comm may hold any bytes, and the file must stay valid UTF-8.
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Trace event times are microseconds; the records' are CLOCK_MONOTONIC ns.
double Microseconds(uint64_t ns) { return ns / 1000.0; }

// Track ids: one per CPU, never 0 (some viewers take tid 0 for the idle task).
int CpuTrack(uint32_t cpu) { return static_cast<int>(cpu) + 1; }

uint64_t CountedStopperNs(const CounterSnapshot& counters) {
  uint64_t ns = 0;
  for (const auto& cpu : counters.cpus) ns += cpu.stopper_run_ns;
  return ns;
}

}  // namespace

std::unique_ptr<Capture> Capture::Start(Session& session, const std::string& path, const std::string& why,
                                        std::string* error) {
  std::unique_ptr<Capture> c(new Capture(session));
  c->path_ = path;
  c->partial_path_ = path + ".part";
  c->why_ = why;
  c->file_ = std::fopen(c->partial_path_.c_str(), "w");
  if (!c->file_) {
    *error = "cannot write " + c->partial_path_ + ": " + std::strerror(errno);
    return nullptr;
  }
  c->buffer_ = ring_buffer__new(session.probes().trace_events_fd(), &Capture::OnRecord, c.get(), nullptr);
  if (!c->buffer_) {
    *error = std::string("cannot open the trace ring buffer: ") + std::strerror(errno);
    return nullptr;
  }
  // Left over from an earlier trace session: not this capture's.
  ring_buffer__consume(c->buffer_);
  c->cpu_seen_.assign(session.probes().possible_cpus(), false);
  std::fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", c->file_);
  CounterSnapshot counters;
  ReadCounters(session.probes(), &counters);
  c->counted_stopper_ns_at_start_ = CountedStopperNs(counters);
  c->drops_at_start_ = counters.host.drops[MW_DROP_TRACE_RINGBUF];
  c->start_ns_ = ClockNs(CLOCK_MONOTONIC);
  c->summary_.start_unix_seconds = ClockNs(CLOCK_REALTIME) / 1e9;
  session.SetTracing(MW_TRACE_BIT(MW_TRACE_MIGRATION) | MW_TRACE_BIT(MW_TRACE_STOPPER_RUN));
  c->tracing_ = true;
  return c;
}

Capture::~Capture() { Abandon(); }

void Capture::Abandon() {
  if (tracing_) session_.SetTracing(0);
  tracing_ = false;
  if (buffer_) ring_buffer__free(buffer_);
  buffer_ = nullptr;
  if (file_) {
    std::fclose(file_);
    std::remove(partial_path_.c_str());
  }
  file_ = nullptr;
}

int Capture::OnRecord(void* ctx, void* data, size_t size) {
  auto* capture = static_cast<Capture*>(ctx);
  const uint32_t kind = size >= sizeof(uint32_t) ? *static_cast<const uint32_t*>(data) : 0;
  if (kind == MW_TRACE_MIGRATION && size >= sizeof(mw_migration_event))
    capture->OnMigration(*static_cast<const mw_migration_event*>(data));
  else if (kind == MW_TRACE_STOPPER_RUN && size >= sizeof(mw_stopper_run_event))
    capture->OnStopperRun(*static_cast<const mw_stopper_run_event*>(data));
  // libbpf reads on while records keep coming: a storm faster than this
  // reader would hold it forever. A negative return ends the read, this
  // record taken.
  return ++capture->drained_ >= kRecordsPerDrain ? -EAGAIN : 0;
}

void Capture::BeginEvent() {
  if (!first_event_) std::fputs(",\n", file_);
  first_event_ = false;
}

// The process's name as the metrics' requester label has it: the comm a
// record carries was read when the process first asked, maybe before an
// exec renamed it.
std::string Capture::Requester(uint32_t pid, uint32_t tgid, const char (&comm)[MW_COMM_LEN]) {
  if (pid == MW_KERNEL_TGID) return "kernel";
  return IdentityOf(tgid, comm).name + "/" + std::to_string(pid);
}

// Looked up once a capture: a process the session does not track yet is
// read from /proc, too slow for every record of a storm. A capture lasts
// seconds, too short for a pid to be reused.
const ProcessIdentity& Capture::IdentityOf(uint32_t tgid, const char (&comm)[MW_COMM_LEN]) {
  auto it = identities_.find(tgid);
  if (it == identities_.end()) it = identities_.emplace(tgid, session_.IdentityOf(tgid, CommOf(comm))).first;
  return it->second;
}

void Capture::OnMigration(const mw_migration_event& e) {
  ++summary_.migrations;
  for (uint32_t cpu : {e.src_cpu, e.dst_cpu})
    if (cpu < cpu_seen_.size()) cpu_seen_[cpu] = true;
  const ProcessIdentity& id = IdentityOf(e.tgid, e.comm);
  const std::string reason(ReasonName(e.reason));
  BeginEvent();
  std::fprintf(
      file_,
      "{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"migration\",\"name\":%s,\"pid\":%d,\"tid\":%d,\"ts\":%.3f,"
      "\"args\":{\"task\":%s,\"tid\":%u,\"process\":%s,\"pid\":%u,\"vm\":%s,\"reason\":%s,"
      "\"from_cpu\":%u,\"to_cpu\":%u,\"moved_by\":%s}}",
      Quote(reason + " " + CommOf(e.comm) + "/" + std::to_string(e.pid) + " -> CPU " + std::to_string(e.dst_cpu))
          .c_str(),
      kHostPid, CpuTrack(e.src_cpu), Microseconds(e.ts_ns), Quote(CommOf(e.comm)).c_str(), e.pid,
      Quote(id.name).c_str(), e.tgid, id.vm.empty() ? "null" : Quote(id.vm).c_str(), Quote(reason).c_str(), e.src_cpu,
      e.dst_cpu,
      Quote(MovedByKernel(e) ? "kernel" : Requester(e.requester_pid, e.requester_tgid, e.requester_comm)).c_str());
}

void Capture::OnStopperRun(const mw_stopper_run_event& e) {
  ++summary_.stopper_runs;
  summary_.stopper_run_ns += e.dur_ns;
  if (e.cpu < cpu_seen_.size()) cpu_seen_[e.cpu] = true;
  const std::string work(WorkName(e.work));
  const std::string victim = e.victim_pid ? std::to_string(e.victim_pid) : "null";
  BeginEvent();
  std::fprintf(file_,
               "{\"ph\":\"X\",\"cat\":\"stopper\",\"name\":%s,\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,"
               "\"args\":{\"work\":%s,\"requester\":%s,\"requester_pid\":%u,\"requester_tgid\":%u,\"victim\":%s,\"dur_"
               "ns\":%" PRIu64 "}}",
               Quote("migration/" + std::to_string(e.cpu) + ": " + work).c_str(), kHostPid, CpuTrack(e.cpu),
               Microseconds(e.end_ns - e.dur_ns), e.dur_ns / 1000.0, Quote(work).c_str(),
               Quote(Requester(e.requester_pid, e.requester_tgid, e.requester_comm)).c_str(), e.requester_pid,
               e.requester_tgid, victim.c_str(), static_cast<uint64_t>(e.dur_ns));
}

bool Capture::Drain() {
  drained_ = 0;
  const int n = ring_buffer__consume(buffer_);
  return (n >= 0 || n == -EAGAIN) && !std::ferror(file_);
}

bool Capture::Finish(CaptureSummary* summary, std::string* error) {
  session_.SetTracing(0);
  tracing_ = false;
  const uint64_t end_ns = ClockNs(CLOCK_MONOTONIC);
  CounterSnapshot counters;
  ReadCounters(session_.probes(), &counters);
  // What was written before tracing went off: no more comes.
  drained_ = 0;
  const int n = ring_buffer__consume(buffer_);
  summary_.counted_stopper_ns = CountedStopperNs(counters) - counted_stopper_ns_at_start_;
  summary_.ring_buffer_drops = counters.host.drops[MW_DROP_TRACE_RINGBUF] - drops_at_start_;
  summary_.seconds = (end_ns - start_ns_) / 1e9;

  BeginEvent();
  std::fprintf(file_, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"args\":{\"name\":\"CPUs\"}}", kHostPid);
  for (size_t cpu = 0; cpu < cpu_seen_.size(); ++cpu) {
    if (!cpu_seen_[cpu] && !(cpu < counters.online.size() && counters.online[cpu])) continue;
    std::fprintf(file_,
                 ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":\"CPU %zu\"}},\n"
                 "{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":%d,\"tid\":%d,\"args\":{\"sort_index\":%zu}}",
                 kHostPid, CpuTrack(cpu), cpu, kHostPid, CpuTrack(cpu), cpu);
  }
  std::fprintf(
      file_,
      "\n],\n\"otherData\":{\"producer\":\"migwatch\",\"trigger\":%s,\"start_unix_seconds\":%.6f,"
      "\"start_monotonic_us\":%.3f,\"seconds\":%.3f,\"migrations\":%" PRIu64 ",\"stopper_runs\":%" PRIu64
      ",\"stopper_run_ns\":%" PRIu64 ",\"counted_stopper_ns\":%" PRIu64 ",\"ring_buffer_drops\":%" PRIu64 "}}\n",
      Quote(why_).c_str(), summary_.start_unix_seconds, Microseconds(start_ns_), summary_.seconds, summary_.migrations,
      summary_.stopper_runs, summary_.stopper_run_ns, summary_.counted_stopper_ns, summary_.ring_buffer_drops);
  const bool written = !std::ferror(file_);
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (n < 0 || !written || !closed || std::rename(partial_path_.c_str(), path_.c_str()) != 0) {
    *error = n < 0 ? std::string("reading the trace ring buffer failed: ") + std::strerror(-n)
                   : "cannot write " + path_ + ": " + std::strerror(errno);
    std::remove(partial_path_.c_str());
    return false;
  }
  if (summary) *summary = summary_;
  return true;
}

std::string CaptureFilePath(const std::string& dir) {
  const time_t now = time(nullptr);
  struct tm tm;
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
  return (std::filesystem::path(dir) / (std::string(kCapturePrefix) + stamp + std::string(kCaptureSuffix))).string();
}

void RemoveOldCaptures(const std::string& dir, size_t keep) {
  std::vector<std::filesystem::path> captures;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with(kCapturePrefix) && name.ends_with(kCaptureSuffix)) captures.push_back(it->path());
  }
  if (captures.size() <= keep) return;
  // The names hold the UTC time: in name order, the oldest come first.
  std::sort(captures.begin(), captures.end());
  for (size_t i = 0; i + keep < captures.size(); ++i) std::filesystem::remove(captures[i], ec);
}

}  // namespace migwatch

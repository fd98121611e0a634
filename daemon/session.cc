#include "migwatch/session.h"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

namespace migwatch {
namespace {

int DeliverTaskEvent(void* ctx, void* data, size_t size) {
  if (size < sizeof(mw_task_event)) return 0;
  static_cast<Session*>(ctx)->OnTaskEvent(*static_cast<const mw_task_event*>(data));
  return 0;
}

}  // namespace

std::unique_ptr<Session> Session::Open(const CommonOptions& options, std::string* error) {
  std::unique_ptr<Session> s(new Session());
  s->probes_ = Probes::Load(options.probes, error);
  if (!s->probes_) return nullptr;
  for (const auto& p : s->probes_->status()) {
    if (p.mode != MW_MODE_NONE)
      spdlog::info("probe {} attached as {}", p.name, ProbeModeName(p.mode));
    else
      spdlog::info("probe {} not attached: {}", p.name, p.why_not);
  }
  s->attributor_ = std::make_unique<Attributor>(*s->probes_, options.label_cap, options.vm_label_cap);
  s->qemu_ = std::make_unique<QemuTracker>(*s->probes_, *s->attributor_);
  s->task_events_ =
      ring_buffer__new(bpf_map__fd(s->probes_->task_events_map()), DeliverTaskEvent, s.get(), nullptr);
  if (!s->task_events_) {
    *error = std::string("cannot open the task ring buffer: ") + std::strerror(errno);
    return nullptr;
  }
  s->qemu_->Scan();
  return s;
}

void Session::OnTaskEvent(const mw_task_event& event) {
  const std::string comm(event.comm, strnlen(event.comm, MW_COMM_LEN));
  if (event.kind == MW_TASK_EXEC) {
    attributor_->OnExec(event.tgid, comm);
    return;
  }
  if (event.kind == MW_TASK_RENAME && event.pid == event.tgid) attributor_->OnRename(event.tgid, comm);
  qemu_->OnTaskEvent(event);
}

Session::~Session() {
  if (task_events_) ring_buffer__free(task_events_);
}

bool Session::Poll(int timeout_ms) {
  int n = ring_buffer__poll(task_events_, timeout_ms);
  if (n < 0 && n != -EINTR) {
    spdlog::error("reading the task ring buffer failed: {}", std::strerror(-n));
    return false;
  }
  return true;
}

}  // namespace migwatch

// Least privilege: the capabilities the daemon gives up once it runs.
#pragma once

#include <optional>
#include <string>

namespace migwatch {

/// What DropCapabilities left the process with.
struct CapabilityDrop {
  bool ok = false;
  /// The capability that grants bpf(2) (CAP_BPF, or CAP_SYS_ADMIN where the
  /// process has no CAP_BPF) was kept because this kernel refuses bpf(2) on
  /// an open map without it: before 6.5, kernel.unprivileged_bpf_disabled
  /// applies to every bpf(2) command, not only to loading.
  bool kept_bpf = false;
  std::string error;  ///< when !ok
};

/// Drops every capability from the calling thread, keeping only what
/// reading the BPF maps through their open descriptors needs on this kernel
/// (measured with `bpf_map_fd`), and sets no_new_privs so that no execve can
/// gain any back. Drops the bounding set too when CAP_SETPCAP allows it.
///
/// Capabilities belong to threads: threads created afterwards inherit the
/// result, threads that already exist keep what they have. Call it while
/// the process has one thread.
CapabilityDrop DropCapabilities(int bpf_map_fd);

}  // namespace migwatch

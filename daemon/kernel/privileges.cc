#include "migwatch/kernel/privileges.h"

#include <bpf/bpf.h>
#include <cap-ng.h>
#include <linux/capability.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstring>

namespace migwatch {
namespace {

// Sets the calling thread's capabilities to `cap` alone (none if cap < 0):
// permitted, and effective too if `effective`. Lowering needs no privilege.
bool ApplyOnly(int cap, bool effective) {
  capng_clear(CAPNG_SELECT_CAPS);
  const auto sets = static_cast<capng_type_t>(effective ? CAPNG_EFFECTIVE | CAPNG_PERMITTED : CAPNG_PERMITTED);
  if (cap >= 0 && capng_update(CAPNG_ADD, sets, static_cast<unsigned>(cap)) != 0)
    return false;
  return capng_apply(CAPNG_SELECT_CAPS) == 0;
}

}  // namespace

CapabilityDrop DropCapabilities(int bpf_map_fd) {
  CapabilityDrop result;
  auto fail = [&](const char* what) {
    result.error = std::string(what) + ": " + std::strerror(errno);
    return result;
  };
  if (capng_get_caps_process() != 0) return fail("cannot read this process's capabilities");
  int bpf_cap = capng_have_capability(CAPNG_PERMITTED, CAP_BPF)         ? CAP_BPF
                : capng_have_capability(CAPNG_PERMITTED, CAP_SYS_ADMIN) ? CAP_SYS_ADMIN
                                                                        : -1;
  // The bounding set first: dropping from it takes CAP_SETPCAP, which goes
  // next. Without CAP_SETPCAP (as under the systemd unit, whose own bounding
  // set is already small) no_new_privs below keeps execve from using it.
  if (capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP)) {
    capng_clear(CAPNG_SELECT_BOUNDS);
    if (capng_apply(CAPNG_SELECT_BOUNDS) != 0) return fail("cannot drop the capability bounding set");
  }
  // Nothing effective, the bpf(2) capability still permitted: one bpf(2) call
  // on the open map then tells whether this kernel wants it for map access.
  if (!ApplyOnly(bpf_cap, false)) return fail("cannot drop capabilities");
  bpf_map_info info{};
  __u32 length = sizeof(info);
  result.kept_bpf = bpf_cap >= 0 && bpf_obj_get_info_by_fd(bpf_map_fd, &info, &length) != 0 && errno == EPERM;
  if (!ApplyOnly(result.kept_bpf ? bpf_cap : -1, true)) return fail("cannot drop capabilities");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail("cannot set no_new_privs");
  result.ok = true;
  return result;
}

}  // namespace migwatch

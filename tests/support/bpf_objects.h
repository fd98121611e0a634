// The kernel's view of migwatch's BPF objects: programs and links that
// outlive the daemon, and the entries of the daemon's maps.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace migwatch::testing {

/// Entries in the BPF map called `map_name` that process `holder` has open
/// (the daemon's own maps); nullopt if it has none by that name.
std::optional<size_t> MapEntries(pid_t holder, const std::string& map_name);

/// A BPF program or link of migwatch's that the kernel still has.
struct BpfObject {
  std::string kind;  ///< "program" or "link"
  uint32_t id = 0;
  std::string name;  ///< the program's name
  std::set<pid_t> holders;  ///< processes with an fd on it (a link's, for a program)
};
/// Every program of migwatch's BPF object (and every link to one) loaded in
/// the kernel now, with the processes holding it. Needs root (fdinfo of
/// other processes).
std::vector<BpfObject> MigwatchBpfObjects();
/// The objects no live process holds: left behind. Waits up to `grace_s`
/// for ones on their way out (the kernel frees a detached link's program
/// after an RCU grace period). Objects whose id is in `known` (orphans that
/// were there before the test) are not reported.
std::vector<BpfObject> LeftBehind(const std::set<uint32_t>& known = {}, double grace_s = 3);
/// Ids of the objects held by `pid`.
std::set<uint32_t> HeldBy(const std::vector<BpfObject>& objects, pid_t pid);
/// For failure messages.
std::string Describe(const std::vector<BpfObject>& objects);

}  // namespace migwatch::testing

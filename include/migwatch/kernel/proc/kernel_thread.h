// Names of kernel threads.
#pragma once

#include <string>
#include <string_view>

namespace migwatch {

/// Label for a kernel thread: its comm up to the first '/', which drops the
/// per-CPU and per-device suffixes so that label values stay bounded
/// ("kworker/1:2H" -> "kworker", "cpuhp/1" -> "cpuhp", "migration/0" ->
/// "migration"). A comm without '/' is returned whole; one that starts with
/// '/' gives "". Pure; thread-safe.
std::string KernelThreadLabel(std::string_view comm);

/// True for the comm of a CPU stopper thread: "migration/" followed by one or
/// more decimal digits and nothing else. The caller must still check
/// PF_KTHREAD, since any user thread can name itself "migration/0".
/// Pure; thread-safe.
bool IsStopperThreadName(std::string_view comm);

}  // namespace migwatch

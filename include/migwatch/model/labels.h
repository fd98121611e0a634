// Label values for the ABI enums: the names that metrics, the terminal
// views and the trace output show.
#pragma once

#include <optional>
#include <string_view>

#include "migwatch/abi.h"

namespace migwatch {

std::string_view ReasonName(int reason);  ///< "wakeup", ..., "other"
std::string_view WorkName(int work);      ///< "affinity", ..., "other"
std::string_view DropName(int drop);      ///< "trace_ringbuf", ...

/// Whether a traced move is the kernel's, whatever task it found running:
/// made from interrupt context, or by the balancer. Its requester fields
/// then name no one who asked.
bool MovedByKernel(const mw_migration_event& e);

/// The enum value of a reason name, for filters given on the command line.
std::optional<mw_reason> ReasonFromName(std::string_view name);

}  // namespace migwatch

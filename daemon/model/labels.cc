#include "migwatch/model/labels.h"

#include <array>

namespace migwatch {
namespace {

constexpr std::array<std::string_view, MW_REASON_COUNT> kReasons = {
    "wakeup", "load_balance", "active_balance", "affinity", "numa",
    "exec",   "hotplug",      "rt_push_pull",   "other"};
constexpr std::array<std::string_view, MW_WORK_COUNT> kWorks = {
    "none", "affinity", "active_balance", "numa", "exec", "hotplug", "stop_machine", "rt_push_pull", "watchdog",
    "other"};
constexpr std::array<std::string_view, MW_DROP_COUNT> kDrops = {"trace_ringbuf", "task_ringbuf", "process_map_full",
                                                                   "exiting_map_full"};

}  // namespace

std::string_view ReasonName(int reason) {
  return reason >= 0 && reason < MW_REASON_COUNT ? kReasons[reason] : "other";
}

std::string_view WorkName(int work) { return work >= 0 && work < MW_WORK_COUNT ? kWorks[work] : "other"; }

std::string_view DropName(int drop) { return drop >= 0 && drop < MW_DROP_COUNT ? kDrops[drop] : "unknown"; }

bool MovedByKernel(const mw_migration_event& e) {
  return e.requester_pid == MW_KERNEL_TGID || (e.flags & MW_MIGRATION_IN_INTERRUPT) ||
         e.reason == MW_REASON_LOAD_BALANCE;
}

std::optional<mw_reason> ReasonFromName(std::string_view name) {
  for (int r = 0; r < MW_REASON_COUNT; ++r)
    if (kReasons[r] == name) return static_cast<mw_reason>(r);
  return std::nullopt;
}

}  // namespace migwatch

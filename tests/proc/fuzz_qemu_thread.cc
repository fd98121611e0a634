// libFuzzer target: ClassifyQemuThread and the kernel thread name helpers on
// arbitrary thread names.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "migwatch/kernel/proc/kernel_thread.h"
#include "migwatch/kernel/proc/qemu.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view comm(reinterpret_cast<const char*>(data), size);

  const migwatch::QemuThread thread = migwatch::ClassifyQemuThread(comm);
  const bool migration = thread.kind == migwatch::QemuThreadKind::kMigration;
  if (migration == thread.migration_label.empty()) std::abort();
  // Every vCPU thread is named after the accelerator that runs it.
  const bool accelerator_named = comm.ends_with("/KVM") || comm.ends_with("/TCG");
  if (thread.kind == migwatch::QemuThreadKind::kVcpu && !accelerator_named) std::abort();

  if (!comm.starts_with(migwatch::KernelThreadLabel(comm))) std::abort();
  if (migwatch::IsStopperThreadName(comm) && migwatch::KernelThreadLabel(comm) != "migration") {
    std::abort();
  }
  return 0;
}

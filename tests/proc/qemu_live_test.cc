// QEMU VMs as /proc shows them, from fake QEMU processes (mw_workload run as
// qemu-system-x86_64): their names, their vCPU threads and the time those
// waited for a CPU, checked against what the test reads itself. No root, no
// BPF: the tracker and the fold read /proc as the daemon does.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "migwatch/kernel/proc/schedstat.h"
#include "migwatch/kernel/proc/stat.h"
#include "migwatch/model/attribution.h"
#include "migwatch/model/qemu_tracker.h"
#include "migwatch/workload/workload.h"
#include "support/names.h"
#include "support/process.h"

namespace migwatch {
namespace {

using testing::Process;
using testing::Subprocess;
using testing::UniqueName;

std::string VmOf(pid_t pid) {
  ProcDirectory directory;
  return directory.ResolvePid(static_cast<uint32_t>(pid), "").vm;
}

// The run delay of these threads, summed, as the kernel shows it now.
std::optional<uint64_t> RunDelaySum(pid_t pid, const std::vector<pid_t>& tids) {
  uint64_t sum = 0;
  for (pid_t tid : tids) {
    const auto schedstat = ReadTaskSchedStat(pid, tid);
    if (!schedstat) return std::nullopt;
    sum += schedstat->run_queue_wait_ns;
  }
  return sum;
}

// The daemon's view of the VMs: the tracker and the fold, reading /proc.
struct VmView {
  ProcDirectory directory;
  Attribution attribution{directory, 20, 256};
  QemuTracker tracker{[this](uint32_t tgid) {
    const ProcessIdentity id = attribution.IdentityOf(tgid, "");
    return id.vm.empty() ? std::string() : attribution.VmLabel(id.vm);
  }};
  VmView() { tracker.Scan(); }
  void Fold() { attribution.FoldVcpus(tracker.ReadVcpus()); }
};

// Folds the vCPUs' delay once, between two readings of it by the test: the
// VM's delay lies between them, within 1% of the second, and all its vCPUs
// are counted. Returns the folded delay.
uint64_t ExpectFoldedDelayIsTheKernels(VmView& view, pid_t pid, const std::vector<pid_t>& vcpus,
                                       const std::string& vm) {
  const auto before = RunDelaySum(pid, vcpus);
  view.Fold();
  const auto after = RunDelaySum(pid, vcpus);
  const AttributionTotals& totals = view.attribution.totals();
  if (!before || !after) {
    ADD_FAILURE() << "the vCPU threads' schedstat cannot be read";
    return 0;
  }
  if (!totals.vm_vcpus.count(vm) || !totals.vm_vcpu_delay_ns.count(vm)) {
    ADD_FAILURE() << "VM " << vm << " not found";
    return 0;
  }
  EXPECT_EQ(totals.vm_vcpus.at(vm), vcpus.size());
  const uint64_t folded = totals.vm_vcpu_delay_ns.at(vm);
  std::printf("vCPU run delay of %s: kernel %.3f-%.3f ms, folded %.3f ms\n", vm.c_str(), *before / 1e6, *after / 1e6,
              folded / 1e6);
  EXPECT_GT(*before, 0u) << "a vCPU that shares its CPU with a spinner must wait";
  EXPECT_GE(folded, *before);
  EXPECT_LE(folded, *after);
  EXPECT_NEAR(static_cast<double>(folded), static_cast<double>(*after), 0.01 * static_cast<double>(*after));
  return folded;
}

TEST(QemuLive, VmsWithoutANameAreToldApartByUuidElsePid) {
  const std::string uuid = "5b2c8a3e-1d4f-4e6a-9b7c-0a1b2c3d4e5f";
  Subprocess by_uuid(MW_WORKLOAD_PATH, {"qemu-system-x86_64", "-uuid", uuid, "-m", "512"});
  Subprocess bare_a(MW_WORKLOAD_PATH, {"qemu-system-x86_64", "-m", "512"});
  Subprocess bare_b(MW_WORKLOAD_PATH, {"qemu-system-x86_64", "-m", "512"});
  for (Subprocess* vm : {&by_uuid, &bare_a, &bare_b}) ASSERT_TRUE(vm->ValueOf("vcpu1_tid"));

  EXPECT_EQ(VmOf(by_uuid.pid()), uuid);
  EXPECT_EQ(VmOf(bare_a.pid()), "pid-" + std::to_string(bare_a.pid()));
  EXPECT_EQ(VmOf(bare_b.pid()), "pid-" + std::to_string(bare_b.pid()));
  for (Subprocess* vm : {&by_uuid, &bare_a, &bare_b}) {
    vm->Send("quit");
    EXPECT_EQ(vm->Wait(), 0);
  }
}

TEST(QemuLive, VcpuThreadsOfEitherAcceleratorAreCountedWithTheirRunDelay) {
  const std::string vm = UniqueName("mwt-vcpu-");
  Subprocess fake(MW_WORKLOAD_PATH, {"qemu-system-x86_64", "-name", "guest=" + vm + ",debug-threads=on", "-accel",
                                     "tcg", "-accel", "kvm"});
  const auto vcpu0 = fake.ValueOf("vcpu0_tid"), vcpu1 = fake.ValueOf("vcpu1_tid");
  ASSERT_TRUE(vcpu0 && vcpu1);
  const std::vector<pid_t> vcpus = {std::stoi(*vcpu0), std::stoi(*vcpu1)};
  EXPECT_EQ(ReadTaskComm(fake.pid(), vcpus[0]), "CPU 0/TCG");
  EXPECT_EQ(ReadTaskComm(fake.pid(), vcpus[1]), "CPU 1/KVM");

  // Both spin on one CPU: each waits while the other runs. A second of it
  // makes the delay large beside what grows between the test's two reads.
  fake.Send("share");
  ASSERT_TRUE(fake.ValueOf("shared_cpu"));
  std::this_thread::sleep_for(std::chrono::seconds(1));

  VmView view;
  const uint64_t folded = ExpectFoldedDelayIsTheKernels(view, fake.pid(), vcpus, vm);
  if (HasFatalFailure()) return;

  // The VM stops: no vCPU is left, and the delay it had stays counted.
  fake.Send("quit");
  EXPECT_EQ(fake.Wait(), 0);
  view.Fold();
  EXPECT_EQ(view.attribution.totals().vm_vcpus.at(vm), 0u);
  EXPECT_EQ(view.attribution.totals().vm_vcpu_delay_ns.at(vm), folded);
}

// The tids of pid's threads named `CPU n/TCG` (n < count), once all exist.
std::optional<std::vector<pid_t>> TcgVcpuThreads(pid_t pid, size_t count) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    std::vector<pid_t> found(count, 0);
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
      const pid_t tid = std::stoi(task.path().filename());
      for (size_t n = 0; n < count; ++n)
        if (ReadTaskComm(pid, tid) == "CPU " + std::to_string(n) + "/TCG") found[n] = tid;
    }
    if (std::find(found.begin(), found.end(), 0) == found.end()) return found;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

// A real QEMU under software emulation, its firmware one instruction that
// jumps to itself: vCPU 0 spins, vCPU 1 waits for a start-up IPI that never
// comes. QEMU and a spinner share one CPU, so vCPU 0 waits while the spinner
// runs: the delay folded for the VM is the kernel's, read on both sides.
TEST(QemuLive, ARealQemuVmsTcgVcpusAreCountedWithTheirRunDelay) {
  const char* qemu = "/usr/bin/qemu-system-x86_64";
  if (access(qemu, X_OK) != 0) {
    const char* allow = std::getenv("MIGWATCH_ALLOW_SKIP");
    if (allow && std::string(allow) == "1") GTEST_SKIP() << qemu << " is not installed";
    FAIL() << qemu << " is not installed (qemu-system-x86; MIGWATCH_ALLOW_SKIP=1 skips explicitly)";
  }
  // The reset vector is the last 16 bytes of a 64 KiB firmware: "jmp $".
  const auto firmware = std::filesystem::temp_directory_path() / (UniqueName("mwt-firmware-") + ".bin");
  {
    std::string image(64 * 1024, '\0');
    image[0xfff0] = static_cast<char>(0xeb);
    image[0xfff1] = static_cast<char>(0xfe);
    std::ofstream(firmware, std::ios::binary) << image;
  }
  const std::string vm = UniqueName("mwt-qemu-");
  const int cpu = workload::AllowedCpus().front();
  workload::SpinningThread spinner;
  ASSERT_TRUE(workload::PinThread(spinner.tid(), cpu));
  cpu_set_t ours;
  ASSERT_EQ(sched_getaffinity(0, sizeof(ours), &ours), 0);
  ASSERT_TRUE(workload::PinThread(0, cpu));
  Process::Options options;
  options.start_on_this_cpu = true;
  Process qemu_vm({qemu, "-name", "guest=" + vm + ",debug-threads=on", "-accel", "tcg,thread=multi", "-smp", "2",
                   "-m", "32", "-bios", firmware.string(), "-display", "none", "-nodefaults", "-no-user-config",
                   "-monitor", "none", "-serial", "none"},
                  options);
  sched_setaffinity(0, sizeof(ours), &ours);
  const auto vcpus = TcgVcpuThreads(qemu_vm.pid(), 2);
  std::filesystem::remove(firmware);
  ASSERT_TRUE(vcpus) << "no threads CPU 0/TCG and CPU 1/TCG in QEMU; it printed: " << qemu_vm.Output();
  std::this_thread::sleep_for(std::chrono::seconds(1));

  VmView view;
  ExpectFoldedDelayIsTheKernels(view, qemu_vm.pid(), *vcpus, vm);
}

}  // namespace
}  // namespace migwatch

#include "migwatch/kernel/proc/qemu.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace migwatch {
namespace {

using Args = std::vector<std::string>;

TEST(IsQemuBinary, Table) {
  struct Case {
    std::string_view name;
    bool qemu;
  };
  const Case cases[] = {
      {"qemu-kvm", true},
      {"/usr/libexec/qemu-kvm", true},
      {"/usr/bin/qemu-system-x86_64", true},
      {"qemu-system-aarch64", true},
      {"qemu-system-s390x", true},
      {"qemu-system-mips64el", true},
      {"qemu-system-x86_64-microvm", true},
      {"qemu-system-x86", true},  // comm, truncated to 15 bytes
      {"qemu-system-aar", true},
      {"qemu-system-", false},
      {"qemu-system", false},
      {"qemu-img", false},
      {"qemu-nbd", false},
      {"qemu-x86_64", false},  // user-mode emulator, not a VM
      {"qemu-kvm-wrapper", false},
      {"/usr/bin/qemu-system-x86_64/", false},
      {"qemu-system-X86", false},
      {"qemu-system-x86 64", false},
      {"kvm", false},
      {"", false},
      {"/", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(IsQemuBinary(c.name), c.qemu);
  }
}

TEST(ParseQemuCommandLine, Table) {
  constexpr std::string_view kUuid = "a3b1c2d4-0000-4e5f-8a9b-112233445566";
  const std::string bin = "/usr/bin/qemu-system-x86_64";
  struct Case {
    std::string name;
    Args argv;
    std::optional<QemuVm> vm;
  };
  const Case cases[] = {
      {"libvirt",
       {bin, "-name", "guest=web01,debug-threads=on", "-S", "-uuid", std::string(kUuid)},
       QemuVm{"web01", std::string(kUuid), false}},
      {"bare first item", {bin, "-name", "web01"}, QemuVm{"web01", "", false}},
      {"first item then process=",
       {bin, "-name", "web01,process=qemu:web01"},
       QemuVm{"web01", "", false}},
      {"double dash",
       {bin, "--name", "guest=db", "--uuid", std::string(kUuid), "--incoming", "defer"},
       QemuVm{"db", std::string(kUuid), true}},
      {"escaped comma in guest=",
       {bin, "-name", "guest=a,,b,debug-threads=on"},
       QemuVm{"a,b", "", false}},
      {"escaped comma in first item",
       {bin, "-name", "a,,b,,,,c,process=p"},
       QemuVm{"a,b,,c", "", false}},
      {"escaped comma and '=' in first item", {bin, "-name", "a,,x=y"}, QemuVm{"a,x=y", "", false}},
      {"'=' inside guest value", {bin, "-name", "guest=a=b"}, QemuVm{"a=b", "", false}},
      {"guest= after other keys",
       {bin, "-name", "debug-threads=on,guest=late"},
       QemuVm{"late", "", false}},
      {"last guest= wins", {bin, "-name", "guest=one,guest=two"}, QemuVm{"two", "", false}},
      {"later -name without guest keeps the name",
       {bin, "-name", "vm1", "-name", "debug-threads=on"},
       QemuVm{"vm1", "", false}},
      {"later -name guest wins",
       {bin, "-name", "vm1", "-name", "guest=vm2"},
       QemuVm{"vm2", "", false}},
      {"flag is not a name", {bin, "-name", "guest=vm,debug-threads"}, QemuVm{"vm", "", false}},
      {"no -name: uuid names the VM",
       {bin, "-uuid", std::string(kUuid)},
       QemuVm{std::string(kUuid), std::string(kUuid), false}},
      {"empty guest: uuid names the VM",
       {bin, "-name", "guest=,debug-threads=on", "-uuid", std::string(kUuid)},
       QemuVm{std::string(kUuid), std::string(kUuid), false}},
      {"uuid is lower-cased",
       {bin, "-uuid", "A3B1C2D4-0000-4E5F-8A9B-112233445566"},
       QemuVm{std::string(kUuid), std::string(kUuid), false}},
      {"invalid uuid is dropped",
       {bin, "-name", "vm", "-uuid", "not-a-uuid"},
       QemuVm{"vm", "", false}},
      {"uuid with a misplaced dash",
       {bin, "-uuid", "a3b1c2d40-000-4e5f-8a9b-112233445566"},
       QemuVm{"", "", false}},
      {"neither name nor uuid", {bin, "-m", "1024"}, QemuVm{"", "", false}},
      {"incoming URI",
       {"qemu-kvm", "-name", "vm", "-incoming", "tcp:0.0.0.0:49152"},
       QemuVm{"vm", "", true}},
      {"-name value missing",
       {bin, "-uuid", std::string(kUuid), "-name"},
       QemuVm{std::string(kUuid), std::string(kUuid), false}},
      {"-incoming value missing", {bin, "-name", "vm", "-incoming"}, QemuVm{"vm", "", false}},
      {"values are not options",
       {bin, "-append", "console=ttyS0", "-name", "vm", "-m", "-name"},
       QemuVm{"vm", "", false}},
      {"-name inside another argument",
       {bin, "-append", "x -name evil", "-name", "vm"},
       QemuVm{"vm", "", false}},
      {"only the binary", {bin}, QemuVm{"", "", false}},
      {"empty argv", {}, std::nullopt},
      {"not qemu", {"/bin/bash", "-name", "vm"}, std::nullopt},
      {"qemu as an argument of something else", {"/usr/bin/env", bin, "-name", "vm"}, std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const auto vm = ParseQemuCommandLine(c.argv);
    ASSERT_EQ(vm.has_value(), c.vm.has_value());
    if (!vm) continue;
    EXPECT_EQ(vm->name, c.vm->name);
    EXPECT_EQ(vm->uuid, c.vm->uuid);
    EXPECT_EQ(vm->incoming, c.vm->incoming);
  }
}

TEST(ClassifyQemuThread, Vcpus) {
  struct Case {
    std::string_view comm;
    std::uint32_t index;
  };
  const Case cases[] = {{"CPU 0/KVM", 0},
                        {"CPU 1/KVM", 1},
                        {"CPU 4095/KVM", 4095},
                        {"CPU 4294967295/KVM", 4294967295u},
                        // Software emulation, a thread per vCPU.
                        {"CPU 0/TCG", 0},
                        {"CPU 17/TCG", 17},
                        // Single-threaded software emulation: one thread for all.
                        {"ALL CPUs/TCG", 0}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.comm);
    const QemuThread thread = ClassifyQemuThread(c.comm);
    EXPECT_EQ(thread.kind, QemuThreadKind::kVcpu);
    EXPECT_EQ(thread.vcpu_index, c.index);
    EXPECT_EQ(thread.migration_label, "");
  }
}

TEST(ClassifyQemuThread, MigrationThreads) {
  using enum MigrationSide;
  struct Case {
    std::string_view comm;
    MigrationSide side;
    std::string_view label;
  };
  const Case cases[] = {
      // QEMU < 9.1
      {"live_migration", kSource, "live_migration"},
      {"multifdsend_0", kSource, "multifdsend"},
      {"multifdsend_15", kSource, "multifdsend"},
      {"return path", kSource, "return path"},
      {"bg_snapshot", kSource, "bg_snapshot"},
      {"multifd-tls-han", kSource, "multifd-tls-han"},
      {"multifdrecv_3", kDestination, "multifdrecv"},
      {"postcopy/listen", kDestination, "postcopy/listen"},
      {"postcopy/fault", kDestination, "postcopy/fault"},
      {"fault-default", kDestination, "fault-default"},
      {"fault-fast", kDestination, "fault-fast"},
      {"COLO incoming", kDestination, "COLO incoming"},
      // QEMU >= 9.1
      {"mig/src/main", kSource, "mig/src/main"},
      {"mig/src/send_0", kSource, "mig/src/send"},
      {"mig/src/send_127", kSource, "mig/src/send"},
      {"mig/src/return", kSource, "mig/src/return"},
      {"mig/src/rp-thr", kSource, "mig/src/rp-thr"},
      {"mig/src/tls", kSource, "mig/src/tls"},
      {"mig/snapshot", kSource, "mig/snapshot"},
      {"mig/dst/recv_0", kDestination, "mig/dst/recv"},
      {"mig/dst/recv_31", kDestination, "mig/dst/recv"},
      {"mig/src/recv_4", kDestination, "mig/dst/recv"},
      {"mig/dst/listen", kDestination, "mig/dst/listen"},
      {"mig/dst/fault", kDestination, "mig/dst/fault"},
      {"mig/dst/preempt", kDestination, "mig/dst/preempt"},
      {"mig/dst/colo", kDestination, "mig/dst/colo"},
      // Names of later versions follow the mig/<side>/ rule.
      {"mig/dst/main", kDestination, "mig/dst/main"},
      {"mig/src/future_2", kSource, "mig/src/future"},
      {"mig/dst/x_", kDestination, "mig/dst/x_"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.comm);
    EXPECT_EQ(ClassifyQemuThread(c.comm), (QemuThread{.kind = QemuThreadKind::kMigration,
                                                      .side = c.side,
                                                      .migration_label = std::string(c.label)}));
  }
}

TEST(ClassifyQemuThread, OtherThreads) {
  const std::string_view comms[] = {
      "qemu-system-x86",
      "IO mon_iothread",
      "worker",
      "vnc_worker",
      "SPICE Worker",
      "call_rcu",
      "kvm-nx-lpage-re",
      "vhost-4242",
      "iou-wrk-4242",
      "get_dirtyrate",
      "mig/dirtyrate",  // measures dirtying, works for no side
      // Near misses of vCPU names.
      "CPU /KVM",
      "CPU /TCG",
      "CPU 0/tcg",
      "CPU 0/TC",
      "CPU 0/TCG ",
      "CPU 0/HVF",
      "CPU 0/KVM/TCG",
      "ALL CPUs/KVM",
      "ALL CPUs",
      "CPU -1/KVM",
      "CPU 1/KV",
      "CPU 1 /KVM",
      "CPU 01x/KVM",
      "CPU 4294967296/KVM",
      "cpu 0/KVM",
      "CPU 0/KVM ",
      // Near misses of migration names.
      "multifdsend_",
      "multifdsend",
      "multifdsend_x",
      "multifdsend_1a",
      "multifdrecv-1",
      "mig/src/",
      "mig/dst/",
      "postcopy/",
      "mig/",
      "mig/srcx/main",
      "live_migration2",
      "Live_migration",
      "",
      "/",
  };
  for (const std::string_view comm : comms) {
    SCOPED_TRACE(comm);
    EXPECT_EQ(ClassifyQemuThread(comm), QemuThread{});
  }
}

TEST(MigrationSideName, Values) {
  EXPECT_EQ(MigrationSideName(MigrationSide::kSource), "source");
  EXPECT_EQ(MigrationSideName(MigrationSide::kDestination), "destination");
}

}  // namespace
}  // namespace migwatch

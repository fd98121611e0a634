// Least privilege: once its probes are attached and its listener bound, the
// daemon holds no capability in any thread (CAP_BPF alone where the kernel
// wants it for map access), cannot gain one back (no_new_privs), and still
// counts and attributes the processes of other users exactly. It also runs
// as an unprivileged user with the systemd unit's ambient capabilities.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "migwatch/kernel/proc/status.h"
#include "robust.h"

namespace migwatch::testing {
namespace {

namespace fs = std::filesystem;

// `command` run as nobody (uid 65534), through setpriv.
const std::string kSetpriv = "/usr/bin/setpriv";
std::vector<std::string> AsNobody(const std::vector<std::string>& command) {
  std::vector<std::string> argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

// What the daemon should keep: before 6.5, kernel.unprivileged_bpf_disabled
// gates every bpf(2) command, map reads on open fds included.
uint64_t ExpectedKeptCapabilities() {
  utsname u;
  uname(&u);
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  int disabled = 0;
  std::ifstream("/proc/sys/kernel/unprivileged_bpf_disabled") >> disabled;
  bool gated = (major < 6 || (major == 6 && minor < 5)) && disabled != 0;
  return gated ? uint64_t{1} << CAP_BPF : 0;
}

uint64_t Capabilities(pid_t tid, const char* set) {
  auto field = ReadStatusField(tid, set);
  auto mask = field ? ParseCapabilityMask(*field) : std::nullopt;
  return mask.value_or(~uint64_t{0});
}

// Every thread of `pid`: its effective, permitted, inheritable and ambient
// sets are `kept` or less, and no_new_privs is set. Returns the thread count.
size_t ExpectReducedInEveryThread(pid_t pid, uint64_t kept) {
  size_t threads = 0;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    pid_t tid = std::stoi(task.path().filename());
    std::string comm;
    std::ifstream(task.path() / "comm") >> comm;
    EXPECT_EQ(Capabilities(tid, "CapEff"), kept) << "thread " << tid << " " << comm;
    EXPECT_EQ(Capabilities(tid, "CapPrm"), kept) << "thread " << tid << " " << comm;
    EXPECT_EQ(Capabilities(tid, "CapInh"), 0u) << "thread " << tid << " " << comm;
    EXPECT_EQ(Capabilities(tid, "CapAmb"), 0u) << "thread " << tid << " " << comm;
    EXPECT_EQ(ReadStatusField(tid, "NoNewPrivs").value_or("?"), "1") << "thread " << tid << " " << comm;
    std::printf("thread %d %-16s CapEff %016lx CapPrm %016lx CapBnd %016lx NoNewPrivs %s\n", tid, comm.c_str(),
                Capabilities(tid, "CapEff"), Capabilities(tid, "CapPrm"), Capabilities(tid, "CapBnd"),
                ReadStatusField(tid, "NoNewPrivs").value_or("?").c_str());
    ++threads;
  }
  return threads;
}

TEST(Privileges, RootDaemonDropsEveryCapabilityAndStillCountsOtherUsers) {
  MIGWATCH_REQUIRE_BPF();
  Daemon d({kMigwatch, "--web.listen-address=127.0.0.1:0", "--labels.cap=1000"});
  ASSERT_TRUE(d.WaitReady()) << d.Log();
  const uint64_t kept = ExpectedKeptCapabilities();
  EXPECT_GE(ExpectReducedInEveryThread(d.pid(), kept), 2u);  // main loop and HTTP threads
  // Root had CAP_SETPCAP: the bounding set went too.
  EXPECT_EQ(Capabilities(d.pid(), "CapBnd"), 0u);
  EXPECT_NE(d.Log().find("dropped all capabilities"), std::string::npos) << d.Log();

  // A storm in a process of another user: its /proc files and the maps are
  // read without any capability, and the count is exact.
  NamedProgram workload(kWorkload, "mwr-nobody");
  Subprocess storm(kSetpriv, AsNobody({workload.path(), "--hold", "affinity-storm", "--flips", "20000"}));
  ASSERT_TRUE(storm.ValueOf("spinner_tid"));
  storm.Send("go");
  ASSERT_TRUE(storm.ValueOf("flips"));
  CountCheck count = CompareProcessCount(d.port(), storm.pid(), "mwr-nobody");
  EXPECT_TRUE(count.exact) << "migwatch " << count.migwatch << ", kernel se.nr_migrations " << count.kernel;
  EXPECT_GE(count.kernel, 20000u);
  std::printf("storm of uid 65534: migwatch %.0f, kernel %lu\n", count.migwatch, count.kernel);

  // A QEMU process of another user: the VM is named from its cmdline.
  NamedProgram qemu(kWorkload, "qemu-system-x86_64");
  Subprocess vm(kSetpriv, AsNobody({qemu.path(), "-name", "guest=robust-vm,debug-threads=on"}));
  ASSERT_TRUE(vm.ValueOf("vcpu0_tid"));
  vm.Send("flip 500");
  auto flipped = vm.ValueOf("flipped");
  ASSERT_TRUE(flipped);
  Exposition e = Scrape(d.port());
  double vm_migrations = Sum(e, "migwatch_vm_migrations_total", {"vm=\"robust-vm\""});
  EXPECT_GE(vm_migrations, std::stod(*flipped));
  std::printf("VM of uid 65534: %s flips, migwatch_vm_migrations_total %.0f\n", flipped->c_str(), vm_migrations);
  vm.Send("quit");
  vm.Wait();

  Finished f = d.Stop(SIGTERM);
  EXPECT_TRUE(f.exited);
  EXPECT_EQ(f.exit_code, 0) << f.output;
}

// "CAP_BPF CAP_PERFMON" from the unit's AmbientCapabilities= ->
// "+bpf,+perfmon", the form setpriv takes.
std::string UnitAmbientCapabilities() {
  std::ifstream unit(std::string(MW_SOURCE_DIR) + "/deploy/systemd/migwatch.service");
  std::string line, caps;
  while (std::getline(unit, line)) {
    if (!line.starts_with("AmbientCapabilities=")) continue;
    std::istringstream names(line.substr(line.find('=') + 1));
    for (std::string name; names >> name;) {
      std::string lower = name.substr(4);
      for (char& c : lower) c = static_cast<char>(std::tolower(c));
      caps += (caps.empty() ? "+" : ",+") + lower;
    }
  }
  return caps;
}

// A port below 1024 that nothing listens on.
int FreeLowPort() {
  for (int port = 1023; port >= 600; --port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool free = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    if (free) return port;
  }
  return -1;
}

TEST(Privileges, UnprivilegedUserWithTheUnitsCapabilitiesOnAPortBelow1024) {
  MIGWATCH_REQUIRE_BPF();
  const std::string caps = UnitAmbientCapabilities();
  ASSERT_FALSE(caps.empty()) << "no AmbientCapabilities= in the unit";
  // As under the unit with a drop-in adding CAP_NET_BIND_SERVICE.
  const std::string with_bind = caps + ",+net_bind_service";
  const int port = FreeLowPort();
  ASSERT_GT(port, 0);
  Daemon d({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=" + with_bind,
            "--ambient-caps=" + with_bind, "--", kMigwatch, "--web.listen-address=127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(d.WaitReady()) << d.Log();
  EXPECT_EQ(d.port(), port);
  EXPECT_EQ(ReadStatusField(d.pid(), "Uid").value_or("?").substr(0, 5), "65534");
  ExpectReducedInEveryThread(d.pid(), ExpectedKeptCapabilities());
  Exposition e = Scrape(port);
  // The unit's capabilities give every probe the mode root gets.
  Daemon root({kMigwatch, "--web.listen-address=127.0.0.1:0"});
  ASSERT_TRUE(root.WaitReady()) << root.Log();
  EXPECT_EQ(ProbeModes(e), ProbeModes(Scrape(root.port()))) << d.Log();
  std::printf("uid 65534 with %s: listening on %d, CapEff %016lx\n", with_bind.c_str(), port,
              Capabilities(d.pid(), "CapEff"));
  Finished f = d.Stop(SIGTERM);
  EXPECT_EQ(f.exit_code, 0) << f.output;
}

}  // namespace
}  // namespace migwatch::testing

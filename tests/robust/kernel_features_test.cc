// Kernel features the daemon may not find: the privileges to load BPF, the
// kernel's BTF, tracefs. Each ends in one clear error, or plays no part.
//
// The kernel is simulated from the outside: setpriv takes capabilities away,
// and a private mount namespace (unshare -m) hides tracefs or BTF from the
// daemon alone. Kernels without a tracepoint or an fentry target are
// covered by the VM matrix.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "robust.h"

namespace migwatch::testing {
namespace {

// A shell line run in a private mount namespace before it execs the daemon.
std::vector<std::string> InPrivateMounts(const std::string& setup, const std::string& exec_prefix,
                                         const std::vector<std::string>& flags) {
  std::string command = setup + " && exec " + exec_prefix + " " + kMigwatch;
  for (const auto& f : flags) command += " " + f;
  return {"unshare", "--mount", "--propagation", "private", "sh", "-c", command};
}

// Starts a daemon expected to run degraded; returns its scrape.
Exposition ScrapeDegraded(Daemon& d) {
  EXPECT_TRUE(d.WaitReady()) << d.Log();
  Response r = HttpGet(d.port());
  EXPECT_EQ(r.status, 200) << r.error;
  std::string error;
  auto e = ParseExposition(r.body, &error);
  EXPECT_TRUE(e) << error;
  return e.value_or(Exposition{});
}

// The value of one series; NaN when it is missing, which no EXPECT_EQ takes.
double Series(const Exposition& e, const std::string& series) {
  auto it = e.samples.find(series);
  return it == e.samples.end() ? std::nan("") : it->second;
}
const std::string kMigrateTaskTpBtf =
    R"(migwatch_probe_attached{probe="sched_migrate_task",mode="tp_btf",required="true"})";

// Unmounts tracefs wherever it is mounted in this namespace.
const std::string kUnmountTracefs =
    "umount -l /sys/kernel/tracing; if mountpoint -q /sys/kernel/debug; then umount -l /sys/kernel/debug; fi; "
    "! grep -q ' tracefs ' /proc/self/mounts";

TEST(KernelFeatures, NoBpfPermissionIsOneClearError) {
  MIGWATCH_REQUIRE_BPF();
  struct Case {
    const char* name;
    std::vector<std::string> run_as;
    const char* lacks;
  };
  for (const Case& c : {
           Case{"root without capabilities", {"setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"},
                "lacks CAP_BPF and CAP_PERFMON"},
           Case{"CAP_BPF alone", {"setpriv", "--bounding-set=-all,+bpf", "--inh-caps=-all", "--"}, "lacks CAP_PERFMON"},
           Case{"unprivileged user", {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"},
                "lacks CAP_BPF and CAP_PERFMON"},
       }) {
    std::vector<std::string> argv = c.run_as;
    argv.push_back(kMigwatch);
    argv.push_back("--web.listen-address=127.0.0.1:0");
    Finished f = RunToEnd(argv);
    EXPECT_TRUE(f.exited) << c.name << ": " << f.output;
    EXPECT_EQ(f.exit_code, 1) << c.name << ": " << f.output;
    EXPECT_NE(f.output.find("level=error msg=\"loading the BPF programs needs root, or CAP_BPF and CAP_PERFMON"),
              std::string::npos)
        << c.name << ": " << f.output;
    EXPECT_NE(f.output.find(c.lacks), std::string::npos) << c.name << ": " << f.output;
    // Said before trying, in one line: no ladder of refused programs first.
    EXPECT_EQ(std::count(f.output.begin(), f.output.end(), '\n'), 1) << c.name << ": " << f.output;
    std::printf("%-26s exit %d in %.2fs: %s", c.name, f.exit_code, f.seconds, f.output.c_str());
  }
}

TEST(KernelFeatures, NoKernelBtfIsOneClearError) {
  MIGWATCH_REQUIRE_BPF();
  // An empty tmpfs over /sys/kernel/btf: what a kernel without
  // CONFIG_DEBUG_INFO_BTF shows (libbpf's other places for a vmlinux with
  // BTF, under /boot and /usr/lib/debug, are not on this machine).
  Finished f = RunToEnd(InPrivateMounts("mount -t tmpfs none /sys/kernel/btf", "", {"--web.listen-address=127.0.0.1:0"}));
  EXPECT_TRUE(f.exited) << f.output;
  EXPECT_EQ(f.exit_code, 1) << f.output;
  EXPECT_NE(f.output.find("level=error msg=\"the kernel has no BTF"), std::string::npos) << f.output;
  EXPECT_EQ(std::count(f.output.begin(), f.output.end(), '\n'), 1) << f.output;
  std::printf("no BTF: exit %d in %.2fs: %s", f.exit_code, f.seconds, f.output.c_str());
}

// No probe uses tracefs: without it, and without the CAP_SYS_ADMIN that
// mounting it would take (as under the systemd unit), every probe gets the
// mode it gets on a machine with tracefs mounted.
TEST(KernelFeatures, TracefsPlaysNoPart) {
  MIGWATCH_REQUIRE_BPF();
  Daemon with({kMigwatch, "--web.listen-address=127.0.0.1:0"});
  Daemon without(InPrivateMounts(kUnmountTracefs, "setpriv --bounding-set=-sys_admin --",
                                 {"--web.listen-address=127.0.0.1:0"}));
  const std::string expected = ProbeModes(ScrapeDegraded(with));
  const Exposition e = ScrapeDegraded(without);
  EXPECT_EQ(ProbeModes(e), expected) << without.Log();
  EXPECT_EQ(Series(e, kMigrateTaskTpBtf), 1);
  EXPECT_EQ(without.Stop(SIGTERM).exit_code, 0);
  EXPECT_EQ(with.Stop(SIGTERM).exit_code, 0);
}

}  // namespace
}  // namespace migwatch::testing

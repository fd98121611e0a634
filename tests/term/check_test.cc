// migwatch check on this host: it passes, its fentry verdict agrees with
// what the kernel itself answers, and without privileges it fails clearly.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <regex>

#include "support/process.h"
#include "support/require.h"
#include "support/text.h"
#include "top_view.h"

namespace migwatch::testing {
namespace {

// Asks the kernel directly whether it loads an fentry program (on a
// scheduler function that migwatch hooks): nullopt if it does, else why not.
std::optional<std::string> KernelRefusesFentry() {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return std::string("no kernel BTF");
  const int btf_id = btf__find_by_name_kind(vmlinux, "migration_cpu_stop", BTF_KIND_FUNC);
  btf__free(vmlinux);
  if (btf_id < 0) return std::string("migration_cpu_stop is not in the kernel's BTF");
  const struct bpf_insn return_zero[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
      {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
              .attach_btf_id = static_cast<__u32>(btf_id));
  const int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "check_oracle", "GPL", return_zero, 2, &opts);
  if (fd < 0) return std::string(std::strerror(errno));
  close(fd);
  return std::nullopt;
}

std::optional<std::string> LineStartingWith(const std::string& out, const std::string& prefix) {
  for (const auto& line : Lines(out))
    if (line.rfind(prefix, 0) == 0) return line;
  return std::nullopt;
}

TEST(Check, PassesOnThisHost) {
  MIGWATCH_REQUIRE_BPF();
  const Finished check = RunToEnd({MIGWATCH_PATH, "check"}, 300);
  std::printf("%s", check.out.c_str());
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("\nPASS: migwatch can run on this host.\n"), std::string::npos) << check.out;
  EXPECT_EQ(check.out.find("[FAIL]"), std::string::npos) << check.out;

  // The counted storm: migwatch's count equals the kernel's.
  const auto storm = LineStartingWith(check.out, "  [ ok ] storm");
  ASSERT_TRUE(storm) << check.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*storm, m, std::regex(R"(migwatch counted (\d+) .*se\.nr_migrations (\d+))")))
      << *storm;
  EXPECT_EQ(m[1], m[2]);
  EXPECT_GE(std::stoull(m[2]), 2000u);

  // Every probe has a row; the required ones are attached.
  for (const char* required : {"sched_migrate_task", "sched_switch"}) {
    const auto row = LineStartingWith(check.out, std::string("  ") + required + " ");
    ASSERT_TRUE(row) << check.out;
    EXPECT_EQ(Fields(*row)[1], "tp_btf") << *row;
  }

  // fentry: the verdict the kernel gives when asked directly.
  const auto refusal = KernelRefusesFentry();
  const auto verdict = [&]() -> std::optional<std::string> {
    for (const auto& line : Lines(check.out))
      if (line.find("] fentry ") != std::string::npos) return line;
    return std::nullopt;
  }();
  ASSERT_TRUE(verdict) << check.out;
  if (refusal) {
    EXPECT_NE(verdict->find("[warn] fentry       unavailable: "), std::string::npos) << *verdict;
    EXPECT_NE(verdict->find(*refusal), std::string::npos) << *verdict << "\nthe kernel says: " << *refusal;
  } else {
    EXPECT_NE(verdict->find("[ ok ] fentry"), std::string::npos) << *verdict;
  }
}

void ExpectPrivilegeFailure(const Finished& check, const std::string& euid) {
  EXPECT_EQ(check.exit_code, 1) << check.out << check.err;
  const auto line = LineStartingWith(check.out, "  [FAIL] privileges");
  ASSERT_TRUE(line) << check.out;
  EXPECT_NE(line->find("euid " + euid + ", CAP_BPF no, CAP_PERFMON no, CAP_SYS_ADMIN no"), std::string::npos)
      << *line;
  // The daemon's refusal word for word: one preflight for both.
  EXPECT_NE(line->find("loading the BPF programs needs root, or CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before "
                       "Linux 5.8); this process lacks CAP_BPF and CAP_PERFMON"),
            std::string::npos)
      << *line;
  const auto last = Lines(check.out).back();
  EXPECT_EQ(last, "FAIL (privileges): the BPF programs cannot be loaded") << check.out;
}

TEST(Check, FailsClearlyForAnUnprivilegedUser) {
  MIGWATCH_REQUIRE_BPF();  // root, to become nobody
  ASSERT_EQ(access(SETPRIV_PATH, X_OK), 0) << "setpriv not found (" << SETPRIV_PATH << "): util-linux provides it";
  const Finished check = RunToEnd({SETPRIV_PATH, "--reuid=65534", "--regid=65534", "--clear-groups",
                                   "--inh-caps=-all", "--bounding-set=-all", MIGWATCH_PATH, "check"},
                                  60);
  std::printf("%s", check.out.c_str());
  ExpectPrivilegeFailure(check, "65534");
}

TEST(Check, FailsClearlyForRootWithoutCapabilities) {
  MIGWATCH_REQUIRE_BPF();
  ASSERT_EQ(access(SETPRIV_PATH, X_OK), 0) << "setpriv not found (" << SETPRIV_PATH << "): util-linux provides it";
  const Finished check =
      RunToEnd({SETPRIV_PATH, "--inh-caps=-all", "--bounding-set=-all", MIGWATCH_PATH, "check"}, 60);
  ExpectPrivilegeFailure(check, "0");
}

}  // namespace
}  // namespace migwatch::testing

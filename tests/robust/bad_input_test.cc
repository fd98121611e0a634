// Bad command lines and web configs: each start fails with one line naming
// the problem and a non-zero exit, never a crash, and leaves no BPF program
// or link behind.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "robust.h"

namespace migwatch::testing {
namespace {

namespace fs = std::filesystem;

// What each case gets to set its stage with.
struct Stage {
  fs::path dir;  ///< a scratch directory of the case
  int busy_port = -1;  ///< a port a socket of the test listens on
};

struct BadInput {
  std::string name;
  std::function<std::vector<std::string>(const Stage&)> args;  ///< after the binary
  std::string expected;  ///< in the error line
  bool loads_probes = false;  ///< whether the start gets as far as loading (port in use)
  std::vector<std::string> run_as{};  ///< a wrapper in front of the binary
  std::string web_config{};  ///< contents of dir/web.yml, if any
};

std::ostream& operator<<(std::ostream& os, const BadInput& c) { return os << c.name; }

std::string WebConfig(const Stage& s) { return "--web.config.file=" + (s.dir / "web.yml").string(); }

const std::vector<std::string> kAsNobody = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};

std::vector<BadInput> Cases() {
  auto fixed = [](std::vector<std::string> a) { return [a](const Stage&) { return a; }; };
  auto with_config = [](const Stage& s) { return std::vector<std::string>{WebConfig(s)}; };
  // migwatch capture ARGS -o dir/FILE (FILE empty: the directory itself).
  auto capture = [](std::vector<std::string> a, std::string file) {
    return [a, file](const Stage& s) {
      std::vector<std::string> args{"capture"};
      args.insert(args.end(), a.begin(), a.end());
      args.push_back("-o");
      args.push_back(file.empty() ? s.dir.string() + "/" : (s.dir / file).string());
      return args;
    };
  };
  auto thresholds = [](std::string file) {
    return [file](const Stage& s) { return std::vector<std::string>{"--capture.thresholds=" + (s.dir / file).string()}; };
  };
  return {
      {"unknown_flag", fixed({"--no-such-flag"}), "not expected: --no-such-flag"},
      {"stray_argument", fixed({"--labels.cap", "5", "stray"}), "not expected: stray"},
      {"unknown_subcommand_flag", fixed({"top", "--no-such-flag"}), "not expected: --no-such-flag"},
      {"listen_address_without_port", fixed({"--web.listen-address=localhost"}), "invalid listen address \\\"localhost\\\""},
      {"listen_address_bad_port", fixed({"--web.listen-address=127.0.0.1:99999"}), "out of range"},
      {"listen_address_host_name", fixed({"--web.listen-address=example.org:9100"}), "host names are not resolved"},
      {"listen_address_ipv6", fixed({"--web.listen-address=[::1]:9100"}), "IPv6"},
      {"listen_address_empty", fixed({"--web.listen-address="}), "--web.listen-address"},
      {"listen_address_twice", fixed({"--web.listen-address=127.0.0.1:19999", "--web.listen-address=127.0.0.1:19999"}),
       "given more than once"},
      {"listen_address_overlap", fixed({"--web.listen-address=:19999", "--web.listen-address=127.0.0.1:19999"}),
       "overlaps"},
      {"port_in_use",
       [](const Stage& s) { return std::vector<std::string>{"--web.listen-address=127.0.0.1:" + std::to_string(s.busy_port)}; },
       "Address already in use", true},
      {"web_config_missing", [](const Stage& s) { return std::vector<std::string>{"--web.config.file=" + (s.dir / "absent.yml").string()}; },
       "No such file or directory"},
      {"web_config_is_directory", [](const Stage& s) { return std::vector<std::string>{"--web.config.file=" + s.dir.string()}; },
       "Is a directory"},
      {"web_config_unreadable", with_config, "Permission denied", false, kAsNobody, "basic_auth_users: {}\n"},
      {"web_config_malformed_yaml", with_config, "invalid YAML", false, {}, "basic_auth_users: [unclosed\n"},
      {"web_config_unknown_key", with_config, "unknown key", false, {}, "http_server_config_typo: {}\n"},
      {"bcrypt_hash_not_bcrypt", with_config, "not a bcrypt hash", false, {}, "basic_auth_users:\n  alice: secret\n"},
      {"bcrypt_hash_truncated", with_config, "not a well-formed bcrypt hash", false, {},
       "basic_auth_users:\n  alice: $2y$10$abcdefghijklmnopqrstuu\n"},
      {"tls_requested", with_config, "tls_server_config is not supported", false, {},
       "tls_server_config:\n  cert_file: /etc/ssl/migwatch.crt\n  key_file: /etc/ssl/migwatch.key\n"},
      {"telemetry_path_relative", fixed({"--web.telemetry-path=metrics"}), "must start with /"},
      {"label_cap_zero", fixed({"--labels.cap=0"}), "--labels.cap: Value 0 not in range"},
      {"label_cap_negative", fixed({"--labels.cap=-1"}), "--labels.cap: Value -1 not in range"},
      {"label_cap_not_a_number", fixed({"--labels.cap=many"}), "--labels.cap"},
      {"label_cap_too_large", fixed({"--labels.cap=10001"}), "not in range"},
      {"max_processes_too_small", fixed({"--bpf.max-processes=1"}), "--bpf.max-processes: Value 1 not in range"},
      {"interval_zero", fixed({"top", "--interval=0"}), "--interval: Value 0 not in range"},
      {"interval_too_long", fixed({"top", "--interval=86400"}), "--interval: Value 86400 not in range"},
      {"interval_negative", fixed({"top", "-d", "-1"}), "--interval"},
      {"log_level_unknown", fixed({"--log.level=verbose"}), "unknown --log.level 'verbose'"},
      {"log_format_unknown", fixed({"--log.format=xml"}), "--log.format"},
      {"capture_duration_zero", capture({"-D", "0"}, "x.json"), "--duration: Value 0 not in range"},
      {"capture_duration_not_a_number", capture({"-D", "soon"}, "x.json"), "--duration"},
      {"capture_without_output", fixed({"capture", "-D", "2"}), "--output is required"},
      {"capture_output_directory_missing", capture({"-D", "2"}, "absent/x.json"),
       "cannot write the capture file"},
      {"capture_output_is_directory", capture({"-D", "2"}, ""), "not a file name"},
      {"capture_thresholds_missing", thresholds("absent.json"), "cannot read the thresholds file"},
      // The file in dir/web.yml: a thresholds.json cut short.
      {"capture_thresholds_malformed", thresholds("web.yml"), "is not thresholds.json's format", false, {},
       "{\"storm_min_rate\": {\"value\": }}"},
      {"capture_thresholds_incomplete", thresholds("web.yml"), "has no number >= 0 for", false, {},
       "{\"stopper_cpu_ratio\": {\"value\": 0.1}}"},
  };
}

class BadInputTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(BadInputTest, OneLineErrorNonZeroExitNothingLeftBehind) {
  MIGWATCH_REQUIRE_BPF();
  const BadInput& c = GetParam();
  Stage stage;
  stage.dir = fs::temp_directory_path() / ("migwatch-bad-input-" + std::to_string(getpid()) + "-" + c.name);
  fs::create_directories(stage.dir);
  if (!c.web_config.empty()) {
    std::ofstream(stage.dir / "web.yml") << c.web_config;
    // Root-only, as a config holding password hashes should be.
    fs::permissions(stage.dir / "web.yml", fs::perms::owner_read | fs::perms::owner_write);
  }
  int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(a);
  ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(busy, 1), 0);
  ASSERT_EQ(getsockname(busy, reinterpret_cast<sockaddr*>(&a), &length), 0);
  stage.busy_port = ntohs(a.sin_port);

  std::set<uint32_t> orphans_before;
  for (const auto& o : LeftBehind({}, 0)) orphans_before.insert(o.id);

  std::vector<std::string> argv = c.run_as;
  argv.push_back(kMigwatch);
  for (auto& arg : c.args(stage)) argv.push_back(arg);
  Finished f = RunToEnd(argv, 60);
  close(busy);
  fs::remove_all(stage.dir);

  EXPECT_TRUE(f.exited) << "ended by signal " << f.signal << " (or hung), output:\n" << f.output;
  EXPECT_NE(f.exit_code, 0) << f.output;
  // The one error line: "migwatch: ..." from the command line parser or a
  // logfmt record at level error; nothing else at that level.
  std::vector<std::string> errors;
  std::istringstream lines(f.output);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with("migwatch: ") || line.find("level=error") != std::string::npos) errors.push_back(line);
  ASSERT_EQ(errors.size(), 1u) << f.output;
  EXPECT_NE(errors[0].find(c.expected), std::string::npos) << "error line: " << errors[0];
  // Input is checked before anything is loaded; only a port in use shows
  // up once the probes are attached.
  EXPECT_EQ(f.output.find("attached as") != std::string::npos, c.loads_probes) << f.output;
  EXPECT_EQ(Describe(LeftBehind(orphans_before)), "none");
  std::printf("%-28s exit %3d in %.2fs: %s\n", c.name.c_str(), f.exit_code, f.seconds, errors[0].c_str());
}

INSTANTIATE_TEST_SUITE_P(Table, BadInputTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; });

}  // namespace
}  // namespace migwatch::testing

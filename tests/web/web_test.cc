#include <arpa/inet.h>
#include <crypt.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <prometheus/collectable.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "migwatch/export/web/basic_auth.h"
#include "migwatch/export/web/error.h"
#include "migwatch/export/web/listen_address.h"
#include "migwatch/export/web/web_config.h"
#include "migwatch/export/web/web_server.h"

namespace migwatch {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// ---------------------------------------------------------------------------
// Helpers

// A bcrypt hash made the way htpasswd or a config generator would.
std::string MakeBcryptHash(const std::string& password,
                           const char* prefix = "$2b$") {
  std::array<char, CRYPT_GENSALT_OUTPUT_SIZE> setting{};
  if (crypt_gensalt_rn(prefix, kMinBcryptCost, nullptr, 0, setting.data(),
                       static_cast<int>(setting.size())) == nullptr) {
    throw std::runtime_error("crypt_gensalt_rn failed");
  }
  const auto scratch = std::make_unique<crypt_data>();
  const char* hash = crypt_r(password.c_str(), setting.data(), scratch.get());
  if (hash == nullptr || hash[0] == '*') {
    throw std::runtime_error("crypt_r failed");
  }
  return hash;
}

// The hash of "alice-secret", made once: tests refer to it as HASH.
const std::string& AliceHash() {
  static const std::string hash = MakeBcryptHash("alice-secret");
  return hash;
}

std::string ReplaceAll(std::string text, std::string_view from,
                       std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// The error message of `action`, which must throw WebError.
template <typename Action>
std::string WebErrorOf(Action&& action) {
  try {
    action();
  } catch (const WebError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no WebError thrown";
  return {};
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "web_test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::filesystem::path Write(const std::string& name,
                              const std::string& contents) const {
    const std::filesystem::path file = path_ / name;
    std::ofstream(file, std::ios::binary) << contents;
    return file;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct HttpResponse {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

// One HTTP/1.1 request to 127.0.0.1 on a fresh connection, read until the
// server closes it. Throws if the connection fails.
HttpResponse HttpRequest(int port, const std::string& path,
                         const std::string& extra_headers = "",
                         const std::string& method = "GET") {
  const struct Socket {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ~Socket() {
      if (fd >= 0) {
        close(fd);
      }
    }
  } connection;
  const int fd = connection.fd;
  if (fd < 0) {
    throw std::runtime_error("socket failed");
  }
  const timeval timeout{.tv_sec = 20, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address),
              sizeof address) != 0) {
    throw std::runtime_error("connect to port " + std::to_string(port) +
                             " failed");
  }
  const std::string request = method + " " + path +
                              " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Connection: close\r\n" +
                              extra_headers + "\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    throw std::runtime_error("send failed");
  }
  std::string raw;
  std::array<char, 4096> buffer{};
  ssize_t count = 0;
  while ((count = recv(fd, buffer.data(), buffer.size(), 0)) > 0) {
    raw.append(buffer.data(), static_cast<std::size_t>(count));
  }
  if (count < 0) {
    throw std::runtime_error("recv failed");
  }
  HttpResponse response;
  const std::size_t head_end = raw.find("\r\n\r\n");
  if (!raw.starts_with("HTTP/1.1 ") || head_end == std::string::npos) {
    throw std::runtime_error("not an HTTP response: " + raw);
  }
  response.status = std::stoi(raw.substr(9, 3));
  response.head = raw.substr(0, head_end);
  response.body = raw.substr(head_end + 4);
  return response;
}

std::string BasicAuthHeader(const std::string& user_colon_password) {
  std::string encoded(4 * ((user_colon_password.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(
      reinterpret_cast<unsigned char*>(encoded.data()),
      reinterpret_cast<const unsigned char*>(user_colon_password.data()),
      static_cast<int>(user_colon_password.size()));
  encoded.resize(static_cast<std::size_t>(length));
  return "Basic " + encoded;
}

// ---------------------------------------------------------------------------
// Listen addresses

struct ValidAddressCase {
  std::string name;
  std::string text;
  std::string host;
  std::uint16_t port;
  std::string canonical;
};

class ValidListenAddressTest
    : public ::testing::TestWithParam<ValidAddressCase> {};

TEST_P(ValidListenAddressTest, Parses) {
  const ValidAddressCase& c = GetParam();
  const ListenAddress address = ParseListenAddress(c.text);
  EXPECT_EQ(address.host, c.host);
  EXPECT_EQ(address.port, c.port);
  EXPECT_EQ(address.ToString(), c.canonical);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ValidListenAddressTest,
    ::testing::Values(
        ValidAddressCase{"AllInterfaces", ":9100", "", 9100, ":9100"},
        ValidAddressCase{"Loopback", "127.0.0.1:9100", "127.0.0.1", 9100,
                         "127.0.0.1:9100"},
        ValidAddressCase{"Localhost", "localhost:9100", "127.0.0.1", 9100,
                         "127.0.0.1:9100"},
        ValidAddressCase{"AnyAddress", "0.0.0.0:80", "", 80, ":80"},
        ValidAddressCase{"OtherIpv4", "10.1.2.3:65535", "10.1.2.3", 65535,
                         "10.1.2.3:65535"},
        ValidAddressCase{"PortZero", "127.0.0.1:0", "127.0.0.1", 0,
                         "127.0.0.1:0"},
        ValidAddressCase{"LeadingZeros", ":09100", "", 9100, ":9100"}),
    [](const auto& info) { return info.param.name; });

struct InvalidAddressCase {
  std::string name;
  std::string text;
  std::string reason;
};

class InvalidListenAddressTest
    : public ::testing::TestWithParam<InvalidAddressCase> {};

TEST_P(InvalidListenAddressTest, IsRejectedWithReason) {
  const InvalidAddressCase& c = GetParam();
  const std::string message =
      WebErrorOf([&] { (void)ParseListenAddress(c.text); });
  EXPECT_THAT(message, StartsWith("invalid listen address \"" + c.text + "\""));
  EXPECT_THAT(message, HasSubstr(c.reason));
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, InvalidListenAddressTest,
    ::testing::Values(
        InvalidAddressCase{"Empty", "", "empty"},
        InvalidAddressCase{"Ipv6Loopback", "[::1]:9100", "IPv6"},
        InvalidAddressCase{"Ipv6AllInterfaces", "[::]:9100", "IPv6"},
        InvalidAddressCase{"BareIpv6", "::1", "IPv6"},
        InvalidAddressCase{"NoColon", "9100", "missing port"},
        InvalidAddressCase{"NoPort", "127.0.0.1:", "missing port"},
        InvalidAddressCase{"LetterPort", ":http", "is not a number"},
        InvalidAddressCase{"NegativePort", ":-1", "is not a number"},
        InvalidAddressCase{"SignedPort", ":+80", "is not a number"},
        InvalidAddressCase{"TrailingJunk", ":80x", "is not a number"},
        InvalidAddressCase{"SpaceInPort", ": 80", "is not a number"},
        InvalidAddressCase{"PortTooLarge", ":65536", "out of range"},
        InvalidAddressCase{"PortHuge", ":99999999999999999999999",
                           "out of range"},
        InvalidAddressCase{"HostName", "example.com:9100",
                           "neither an IPv4 address nor localhost"},
        InvalidAddressCase{"ShortIpv4", "127.1:9100",
                           "neither an IPv4 address nor localhost"},
        InvalidAddressCase{"OctetTooLarge", "256.0.0.1:9100",
                           "neither an IPv4 address nor localhost"}),
    [](const auto& info) { return info.param.name; });

TEST(ListenAddressTest, ControlCharactersAreEscapedInMessages) {
  const std::string message =
      WebErrorOf([] { (void)ParseListenAddress("a\nb:80"); });
  EXPECT_THAT(message, HasSubstr("\"a\\x0ab:80\""));
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST(ListenAddressTest, EmbeddedNulInHostIsRejected) {
  EXPECT_THROW((void)ParseListenAddress(std::string("127.0.0.1\0x:80", 14)),
               WebError);
}

TEST(ListenAddressListTest, ParsesEveryEntryInOrder) {
  const std::vector<std::string> texts = {"127.0.0.1:9100", ":9200",
                                          "localhost:9300"};
  const std::vector<ListenAddress> addresses = ParseListenAddresses(texts);
  ASSERT_EQ(addresses.size(), 3u);
  EXPECT_EQ(addresses[0].ToString(), "127.0.0.1:9100");
  EXPECT_EQ(addresses[1].ToString(), ":9200");
  EXPECT_EQ(addresses[2].ToString(), "127.0.0.1:9300");
  EXPECT_EQ(ToCivetwebListeningPorts(addresses),
            "127.0.0.1:9100,9200,127.0.0.1:9300");
}

struct InvalidListCase {
  std::string name;
  std::vector<std::string> texts;
  std::string message;
};

class InvalidListenAddressListTest
    : public ::testing::TestWithParam<InvalidListCase> {};

TEST_P(InvalidListenAddressListTest, IsRejected) {
  const InvalidListCase& c = GetParam();
  EXPECT_THAT(WebErrorOf([&] { (void)ParseListenAddresses(c.texts); }),
              HasSubstr(c.message));
}

INSTANTIATE_TEST_SUITE_P(
    Table, InvalidListenAddressListTest,
    ::testing::Values(
        InvalidListCase{"Empty", {}, "no listen address given"},
        InvalidListCase{"SameTwice",
                        {"127.0.0.1:9100", "127.0.0.1:9100"},
                        "\"127.0.0.1:9100\": given more than once"},
        InvalidListCase{"LocalhostAndLoopback",
                        {"localhost:9100", "127.0.0.1:9100"},
                        "\"127.0.0.1:9100\": given more than once (also as "
                        "\"localhost:9100\")"},
        InvalidListCase{"AllInterfacesTwice",
                        {":9100", "0.0.0.0:9100"},
                        "given more than once"},
        InvalidListCase{"AllInterfacesThenSpecific",
                        {":9100", "127.0.0.1:9100"},
                        "\"127.0.0.1:9100\": overlaps with \":9100\""},
        InvalidListCase{"SpecificThenAllInterfaces",
                        {"127.0.0.1:9100", ":9100"},
                        "\":9100\": overlaps with \"127.0.0.1:9100\""},
        InvalidListCase{
            "OneBadEntry", {":9100", "[::1]:9100"}, "\"[::1]:9100\": IPv6"}),
    [](const auto& info) { return info.param.name; });

TEST(ListenAddressListTest, DistinctSocketsAndPortZeroDoNotConflict) {
  const std::vector<std::string> texts = {"127.0.0.1:9100", "10.0.0.1:9100",
                                          ":9101",          "127.0.0.1:0",
                                          "127.0.0.1:0",    ":0"};
  EXPECT_EQ(ParseListenAddresses(texts).size(), texts.size());
}

// ---------------------------------------------------------------------------
// Telemetry path

TEST(TelemetryPathTest, AcceptsUsualPaths) {
  for (const char* path : {"/metrics", "/probe/metrics", "/a-b_c.d~e"}) {
    SCOPED_TRACE(path);
    EXPECT_NO_THROW(ValidateTelemetryPath(path));
  }
}

TEST(TelemetryPathTest, RejectsWithReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "must start with /"},
      {"metrics", "must start with /"},
      {"/", "landing page"},
      {"/metrics?x=1", "only letters, digits"},
      {"/met rics", "only letters, digits"},
      {"/metrics*", "only letters, digits"},
      {"/m%65trics", "only letters, digits"},
  };
  for (const auto& [path, reason] : cases) {
    SCOPED_TRACE(path);
    EXPECT_THAT(WebErrorOf([&] { ValidateTelemetryPath(path); }),
                AllOf(StartsWith("invalid telemetry path"), HasSubstr(reason)));
  }
}

// ---------------------------------------------------------------------------
// Web config

struct ValidConfigCase {
  std::string name;
  std::string yaml;  // HASH stands for AliceHash()
  std::vector<std::string> users;
};

class ValidWebConfigTest : public ::testing::TestWithParam<ValidConfigCase> {};

TEST_P(ValidWebConfigTest, Parses) {
  const ValidConfigCase& c = GetParam();
  const WebConfig config =
      ParseWebConfig(ReplaceAll(c.yaml, "HASH", AliceHash()), "test.yml");
  std::vector<std::string> users;
  for (const auto& [user, hash] : config.basic_auth_users) {
    users.push_back(user);
    EXPECT_EQ(hash.encoded, AliceHash());
    EXPECT_EQ(hash.cost, kMinBcryptCost);
  }
  EXPECT_EQ(users, c.users);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ValidWebConfigTest,
    ::testing::Values(
        ValidConfigCase{"EmptyDocument", "", {}},
        ValidConfigCase{"OnlyComments", "# no auth\n", {}},
        ValidConfigCase{"NullUsers", "basic_auth_users:\n", {}},
        ValidConfigCase{"EmptyUsers", "basic_auth_users: {}\n", {}},
        ValidConfigCase{
            "OneUser", "basic_auth_users:\n  alice: HASH\n", {"alice"}},
        ValidConfigCase{"QuotedHash",
                        "basic_auth_users:\n  alice: 'HASH'\n  bob: \"HASH\"\n",
                        {"alice", "bob"}},
        ValidConfigCase{
            "FlowStyle", "{basic_auth_users: {carol: HASH}}", {"carol"}}),
    [](const auto& info) { return info.param.name; });

struct InvalidConfigCase {
  std::string name;
  std::string yaml;  // HASH stands for AliceHash()
  std::string message;
};

class InvalidWebConfigTest
    : public ::testing::TestWithParam<InvalidConfigCase> {};

TEST_P(InvalidWebConfigTest, IsRejectedWithOneLineMessage) {
  const InvalidConfigCase& c = GetParam();
  const std::string message = WebErrorOf([&] {
    (void)ParseWebConfig(ReplaceAll(c.yaml, "HASH", AliceHash()), "test.yml");
  });
  EXPECT_THAT(message, StartsWith("web config test.yml: "));
  EXPECT_THAT(message, HasSubstr(c.message));
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, InvalidWebConfigTest,
    ::testing::Values(
        InvalidConfigCase{"UnknownKey", "basic_auth_user:\n  alice: HASH\n",
                          "unknown key \"basic_auth_user\""},
        InvalidConfigCase{"TlsSection",
                          "tls_server_config:\n  cert_file: a.crt\n"
                          "  key_file: a.key\n",
                          "tls_server_config is not supported"},
        InvalidConfigCase{"EmptyTlsSection", "tls_server_config: {}\n",
                          "reverse proxy"},
        InvalidConfigCase{"HttpServerConfig",
                          "http_server_config:\n  http2: false\n",
                          "http_server_config is not supported"},
        InvalidConfigCase{"DuplicateTopLevelKey",
                          "basic_auth_users: {}\nbasic_auth_users: {}\n",
                          "given more than once"},
        InvalidConfigCase{"NotAMapping", "- basic_auth_users\n",
                          "must be a mapping"},
        InvalidConfigCase{"ScalarDocument", "hello\n", "must be a mapping"},
        InvalidConfigCase{"UsersNotAMapping", "basic_auth_users: [alice]\n",
                          "basic_auth_users must be a mapping"},
        InvalidConfigCase{"MalformedYaml", "basic_auth_users: {alice: [\n",
                          "invalid YAML"},
        InvalidConfigCase{"TabIndentedYaml",
                          "basic_auth_users:\n\talice: HASH\n", "invalid YAML"},
        InvalidConfigCase{"PlainPassword",
                          "basic_auth_users:\n  alice: secret\n",
                          "user \"alice\": password hash is not a bcrypt hash"},
        InvalidConfigCase{"NullHash", "basic_auth_users:\n  alice:\n",
                          "user \"alice\": the password hash must be a string"},
        InvalidConfigCase{"ListHash", "basic_auth_users:\n  alice: [HASH]\n",
                          "user \"alice\": the password hash must be a string"},
        InvalidConfigCase{"Sha512Crypt",
                          "basic_auth_users:\n  alice: $6$salt$abc\n",
                          "user \"alice\": password hash is not a bcrypt"},
        InvalidConfigCase{"LegacyBcrypt2x",
                          "basic_auth_users:\n  alice: $2x$04$abc\n",
                          "is not a bcrypt hash"},
        InvalidConfigCase{"ColonInUser", "basic_auth_users:\n  'a:b': HASH\n",
                          "user \"a:b\": a user name cannot contain ':'"},
        InvalidConfigCase{"EmptyUser", "basic_auth_users:\n  '': HASH\n",
                          "user names must be non-empty strings"},
        InvalidConfigCase{"DuplicateUser",
                          "basic_auth_users:\n  bob: HASH\n  bob: HASH\n",
                          "user \"bob\" is listed more than once"}),
    [](const auto& info) { return info.param.name; });

// Damaged hashes, made from a real one.
TEST(WebConfigHashTest, RejectsDamagedHashesNamingTheUser) {
  const std::string hash = AliceHash();
  std::string bad_character = hash;
  bad_character[40] = '!';
  std::string non_canonical_salt = hash;
  // The last salt character carries 2 bits: only ".Oeu" are canonical.
  non_canonical_salt[28] = non_canonical_salt[28] == '/' ? '0' : '/';
  std::string cost_too_high = hash;
  cost_too_high.replace(4, 2, "15");
  std::string cost_too_low = hash;
  cost_too_low.replace(4, 2, "03");
  std::string cost_not_digits = hash;
  cost_not_digits.replace(4, 2, "1a");

  const std::vector<std::pair<std::string, std::string>> cases = {
      {hash.substr(0, 59), "is not a well-formed bcrypt hash"},
      {hash + "x", "is not a well-formed bcrypt hash"},
      {cost_not_digits, "is not a well-formed bcrypt hash"},
      {bad_character, "character \"!\" is not in"},
      {non_canonical_salt, "not a canonically encoded bcrypt hash"},
      {cost_too_high, "bcrypt cost 15, outside 4-14"},
      {cost_too_low, "bcrypt cost 3, outside 4-14"},
  };
  for (const auto& [bad, reason] : cases) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(
        WebErrorOf([&] {
          (void)ParseWebConfig("basic_auth_users:\n  dave: '" + bad + "'\n",
                               "x.yml");
        }),
        AllOf(HasSubstr("user \"dave\": password hash"), HasSubstr(reason)));
  }
}

TEST(WebConfigHashTest, AcceptsEveryBcryptVariantLibcryptMakes) {
  for (const char* prefix : {"$2a$", "$2b$", "$2y$"}) {
    SCOPED_TRACE(prefix);
    const std::string hash = MakeBcryptHash("pw", prefix);
    ASSERT_THAT(hash, StartsWith(prefix));
    const WebConfig config =
        ParseWebConfig("basic_auth_users: {u: '" + hash + "'}", "x.yml");
    EXPECT_EQ(config.basic_auth_users.at("u").encoded, hash);
  }
}

TEST(WebConfigFileTest, LoadsValidFile) {
  const TempDir dir;
  const auto path =
      dir.Write("web.yml", "basic_auth_users:\n  alice: " + AliceHash() + "\n");
  const WebConfig config = LoadWebConfigFile(path);
  ASSERT_EQ(config.basic_auth_users.size(), 1u);
  EXPECT_EQ(config.basic_auth_users.at("alice").encoded, AliceHash());
}

TEST(WebConfigFileTest, EmptyFileMeansNoAuthentication) {
  const TempDir dir;
  EXPECT_TRUE(
      LoadWebConfigFile(dir.Write("web.yml", "")).basic_auth_users.empty());
}

TEST(WebConfigFileTest, MissingFileNamesPathAndReason) {
  const TempDir dir;
  const std::string path = (dir.path() / "missing.yml").string();
  EXPECT_EQ(WebErrorOf([&] { (void)LoadWebConfigFile(path); }),
            "web config " + path + ": cannot open: No such file or directory");
}

TEST(WebConfigFileTest, DirectoryNamesPathAndReason) {
  const TempDir dir;
  EXPECT_EQ(
      WebErrorOf([&] { (void)LoadWebConfigFile(dir.path()); }),
      "web config " + dir.path().string() + ": cannot read: Is a directory");
}

TEST(WebConfigFileTest, MalformedYamlNamesPath) {
  const TempDir dir;
  const auto path = dir.Write("web.yml", "basic_auth_users: {alice: [\n");
  EXPECT_THAT(WebErrorOf([&] { (void)LoadWebConfigFile(path); }),
              StartsWith("web config " + path.string() + ": invalid YAML"));
}

TEST(WebConfigFileTest, TlsSectionNamesPathAndAlternative) {
  const TempDir dir;
  const auto path =
      dir.Write("web.yml", "tls_server_config:\n  cert_file: a.crt\n");
  EXPECT_THAT(WebErrorOf([&] { (void)LoadWebConfigFile(path); }),
              AllOf(StartsWith("web config " + path.string() + ": "),
                    HasSubstr("OpenSSL 3"), HasSubstr("reverse proxy"),
                    HasSubstr("loopback")));
}

// ---------------------------------------------------------------------------
// Basic auth

class BasicAuthenticatorTest : public ::testing::Test {
 protected:
  BasicAuthenticator authenticator_{
      {{"alice", BcryptHash{AliceHash(), kMinBcryptCost}},
       {"bob", BcryptHash{MakeBcryptHash("bob:pass:word"), kMinBcryptCost}}}};
};

TEST_F(BasicAuthenticatorTest, ChecksCredentials) {
  EXPECT_TRUE(authenticator_.CheckCredentials("alice", "alice-secret"));
  // A second time, as a scraper would: still right (from the cache).
  EXPECT_TRUE(authenticator_.CheckCredentials("alice", "alice-secret"));
  EXPECT_FALSE(authenticator_.CheckCredentials("alice", "alice-secreT"));
  EXPECT_FALSE(authenticator_.CheckCredentials("alice", ""));
  EXPECT_FALSE(authenticator_.CheckCredentials("Alice", "alice-secret"));
  EXPECT_FALSE(authenticator_.CheckCredentials("mallory", "alice-secret"));
  EXPECT_FALSE(authenticator_.CheckCredentials("bob", "alice-secret"));
  EXPECT_TRUE(authenticator_.CheckCredentials("bob", "bob:pass:word"));
}

TEST_F(BasicAuthenticatorTest, RejectsPasswordsWithNulThatCryptWouldTruncate) {
  EXPECT_FALSE(authenticator_.CheckCredentials(
      "alice", std::string("alice-secret\0junk", 17)));
  EXPECT_FALSE(authenticator_.CheckCredentials(std::string("alice\0", 6),
                                               "alice-secret"));
}

TEST_F(BasicAuthenticatorTest, ParsesAuthorizationHeader) {
  EXPECT_TRUE(authenticator_.CheckAuthorizationHeader(
      BasicAuthHeader("alice:alice-secret")));
  // The scheme is case-insensitive (RFC 7235); spaces may precede the token.
  EXPECT_TRUE(authenticator_.CheckAuthorizationHeader(
      "basic   " + BasicAuthHeader("alice:alice-secret").substr(6)));
  // Only the first colon separates user and password.
  EXPECT_TRUE(authenticator_.CheckAuthorizationHeader(
      BasicAuthHeader("bob:bob:pass:word")));

  const std::string good_token =
      BasicAuthHeader("alice:alice-secret").substr(6);
  for (const std::string& bad : {
           std::string(),
           std::string("Basic"),
           std::string("Basic "),
           "Bearer " + good_token,
           "Basic" + good_token,
           "Basic " + good_token.substr(1),
           "Basic " + good_token + "=",
           "Basic " + good_token.substr(0, 4) + " " + good_token.substr(4),
           "Basic " + good_token.substr(0, 4) + "*" + good_token.substr(5),
           BasicAuthHeader("alice"),
           BasicAuthHeader("alice:alice-secret\n"),
       }) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(authenticator_.CheckAuthorizationHeader(bad));
  }
}

TEST(BasicAuthenticatorSetupTest, NeedsUsers) {
  EXPECT_THROW(BasicAuthenticator({}), WebError);
}

TEST(BasicAuthenticatorSetupTest, ConcurrentChecksAgree) {
  const BasicAuthenticator authenticator(
      {{"alice", BcryptHash{AliceHash(), kMinBcryptCost}}});
  std::atomic<int> wrong_answers = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        // Right answers hit the cache, wrong ones run bcrypt, concurrently.
        const bool right = (i + t) % 2 == 0;
        const std::string password =
            right ? "alice-secret" : "wrong" + std::to_string(i);
        if (authenticator.CheckCredentials("alice", password) != right) {
          ++wrong_answers;
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(wrong_answers, 0);
}

// ---------------------------------------------------------------------------
// HTTP server

LandingPage TestLandingPage() {
  return {.program_name = "migwatch",
          .version = "1.2.3 (revision <abc>)",
          .description = "Counts task migrations."};
}

std::vector<ListenAddress> Loopback(int count = 1) {
  return std::vector<ListenAddress>(
      static_cast<std::size_t>(count),
      ListenAddress{.host = "127.0.0.1", .port = 0});
}

std::shared_ptr<prometheus::Registry> RegistryWithSample() {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge()
      .Name("web_test_sample")
      .Help("A sample for the web tests.")
      .Register(*registry)
      .Add({{"kind", "test"}})
      .Set(42);
  return registry;
}

class WebServerTest : public ::testing::Test {
 protected:
  void Start(WebConfig config = {}, std::string telemetry_path = "/metrics",
             int addresses = 1) {
    server_ = std::make_unique<WebServer>(
        WebServerOptions{.listen_addresses = Loopback(addresses),
                         .telemetry_path = std::move(telemetry_path),
                         .web_config = std::move(config),
                         .landing_page = TestLandingPage()});
    server_->RegisterCollectable(registry_);
    const std::vector<int> ports = server_->GetListeningPorts();
    ASSERT_EQ(ports.size(), static_cast<std::size_t>(addresses));
    port_ = ports.front();
    ASSERT_GT(port_, 0);
  }

  static WebConfig AliceOnly() {
    WebConfig config;
    config.basic_auth_users.emplace("alice",
                                    BcryptHash{AliceHash(), kMinBcryptCost});
    return config;
  }

  std::shared_ptr<prometheus::Registry> registry_ = RegistryWithSample();
  std::unique_ptr<WebServer> server_;
  int port_ = 0;
};

TEST_F(WebServerTest, LandingPageLinksToTelemetryPath) {
  Start();
  const HttpResponse response = HttpRequest(port_, "/");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.head, HasSubstr("Content-Type: text/html"));
  EXPECT_THAT(response.body, HasSubstr("<a href=\"/metrics\">"));
  EXPECT_THAT(response.body, HasSubstr("<title>migwatch</title>"));
  EXPECT_THAT(response.body, HasSubstr("Counts task migrations."));
  // Text from the program is escaped, not taken as markup.
  EXPECT_THAT(response.body, HasSubstr("1.2.3 (revision &lt;abc&gt;)"));
}

TEST_F(WebServerTest, LandingPageAnswersHeadWithoutBodyAndRefusesPost) {
  Start();
  const HttpResponse head = HttpRequest(port_, "/", "", "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  const HttpResponse post =
      HttpRequest(port_, "/", "Content-Length: 0\r\n", "POST");
  EXPECT_EQ(post.status, 405);
  EXPECT_THAT(post.head, HasSubstr("Allow: GET, HEAD"));
}

TEST_F(WebServerTest, MetricsContainRegisteredSample) {
  Start();
  const HttpResponse response = HttpRequest(port_, "/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.body, HasSubstr("web_test_sample{kind=\"test\"} 42"));
  // The query string does not change the path.
  EXPECT_EQ(HttpRequest(port_, "/metrics?debug=1").status, 200);
}

TEST_F(WebServerTest, ExpiredCollectableIsSkipped) {
  Start();
  registry_.reset();
  const HttpResponse response = HttpRequest(port_, "/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.body, Not(HasSubstr("web_test_sample")));
}

TEST_F(WebServerTest, OtherPathsAre404) {
  Start();
  for (const char* path : {"/favicon.ico", "/metrics/", "/metrics/x",
                           "/metricsx", "/Metrics", "/index.html"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(HttpRequest(port_, path).status, 404);
  }
}

TEST_F(WebServerTest, CustomTelemetryPath) {
  Start({}, "/probe/metrics");
  EXPECT_THAT(HttpRequest(port_, "/").body,
              HasSubstr("<a href=\"/probe/metrics\">"));
  EXPECT_THAT(HttpRequest(port_, "/probe/metrics").body,
              HasSubstr("web_test_sample"));
  EXPECT_EQ(HttpRequest(port_, "/metrics").status, 404);
}

TEST_F(WebServerTest, ServesOnEveryListenAddress) {
  Start({}, "/metrics", 2);
  const std::vector<int> ports = server_->GetListeningPorts();
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_NE(ports[0], ports[1]);
  for (const int port : ports) {
    EXPECT_EQ(HttpRequest(port, "/metrics").status, 200);
  }
}

TEST_F(WebServerTest, BasicAuthGuardsEveryPath) {
  Start(AliceOnly());
  const std::string right =
      "Authorization: " + BasicAuthHeader("alice:alice-secret") + "\r\n";
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"no credentials", ""},
      {"wrong password",
       "Authorization: " + BasicAuthHeader("alice:wrong") + "\r\n"},
      {"unknown user",
       "Authorization: " + BasicAuthHeader("mallory:alice-secret") + "\r\n"},
      {"malformed header", "Authorization: Basic !!!\r\n"},
  };
  for (const char* path : {"/metrics", "/", "/nowhere"}) {
    for (const auto& [what, header] : refused) {
      SCOPED_TRACE(std::string(path) + " with " + what);
      const HttpResponse response = HttpRequest(port_, path, header);
      EXPECT_EQ(response.status, 401);
      EXPECT_THAT(response.head,
                  HasSubstr("WWW-Authenticate: Basic realm=\"migwatch\""));
      EXPECT_THAT(response.body, Not(HasSubstr("web_test_sample")));
    }
  }
  const HttpResponse metrics = HttpRequest(port_, "/metrics", right);
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("web_test_sample{kind=\"test\"} 42"));
  EXPECT_EQ(HttpRequest(port_, "/metrics", right).status, 200);
  EXPECT_EQ(HttpRequest(port_, "/", right).status, 200);
  EXPECT_EQ(HttpRequest(port_, "/nowhere", right).status, 404);
}

TEST_F(WebServerTest, PortInUseIsAClearError) {
  Start();
  const std::string taken = "127.0.0.1:" + std::to_string(port_);
  const std::string message = WebErrorOf([&] {
    WebServer second(
        WebServerOptions{.listen_addresses = {ParseListenAddress(taken)},
                         .landing_page = TestLandingPage()});
  });
  EXPECT_THAT(message, StartsWith("cannot serve HTTP on " + taken + ": "));
  EXPECT_THAT(message, HasSubstr("Address already in use"));
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  // The failed attempt leaves the first server serving.
  EXPECT_EQ(HttpRequest(port_, "/metrics").status, 200);
}

TEST(WebServerSetupTest, UnassignableAddressIsAClearError) {
  // 192.0.2.0/24 is reserved for documentation: never a local address.
  const std::string message = WebErrorOf([] {
    WebServer server(WebServerOptions{
        .listen_addresses = {ParseListenAddress("192.0.2.1:9100")},
        .landing_page = TestLandingPage()});
  });
  EXPECT_THAT(message,
              AllOf(StartsWith("cannot serve HTTP on 192.0.2.1:9100: "),
                    HasSubstr("Cannot assign requested address")));
}

TEST(WebServerSetupTest, RejectsInvalidOptions) {
  EXPECT_THAT(WebErrorOf([] {
                WebServer server(WebServerOptions{
                    .listen_addresses = Loopback(), .telemetry_path = "/"});
              }),
              HasSubstr("landing page"));
  EXPECT_THAT(WebErrorOf([] { WebServer server(WebServerOptions{}); }),
              HasSubstr("no listen address"));
}

// A collectable that blocks its scrape until told to go on.
class BlockingCollectable : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    started_.set_value();
    release_.wait();
    return registry_->Collect();
  }
  std::future<void> Started() { return started_.get_future(); }
  void Release() {
    std::call_once(released_, [this] { release_promise_.set_value(); });
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_ = RegistryWithSample();
  mutable std::promise<void> started_;
  std::promise<void> release_promise_;
  std::shared_future<void> release_ = release_promise_.get_future().share();
  std::once_flag released_;
};

TEST(WebServerShutdownTest, DestructionWaitsForRequestInFlight) {
  const auto collectable = std::make_shared<BlockingCollectable>();
  auto server = std::make_unique<WebServer>(WebServerOptions{
      .listen_addresses = Loopback(), .landing_page = TestLandingPage()});
  server->RegisterCollectable(collectable);
  const int port = server->GetListeningPorts().front();

  std::future<HttpResponse> scrape;
  std::future<void> destruction;
  // Declared after the futures, so destroyed before them: whatever fails,
  // the blocked scrape is released before anything waits for it.
  const struct ReleaseOnExit {
    BlockingCollectable& collectable;
    ~ReleaseOnExit() { collectable.Release(); }
  } release_on_exit{*collectable};

  scrape = std::async(std::launch::async,
                      [port] { return HttpRequest(port, "/metrics"); });
  ASSERT_EQ(collectable->Started().wait_for(std::chrono::seconds(20)),
            std::future_status::ready);
  destruction = std::async(std::launch::async, [&server] { server.reset(); });
  // The scrape cannot finish before Release(), so neither can destruction.
  EXPECT_EQ(destruction.wait_for(std::chrono::milliseconds(300)),
            std::future_status::timeout);
  collectable->Release();
  ASSERT_EQ(destruction.wait_for(std::chrono::seconds(20)),
            std::future_status::ready);
  const HttpResponse response = scrape.get();
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.body, HasSubstr("web_test_sample"));
  EXPECT_THROW(HttpRequest(port, "/metrics"), std::runtime_error);
}

}  // namespace
}  // namespace migwatch

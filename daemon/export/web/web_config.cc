#include "migwatch/export/web/web_config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <set>
#include <system_error>

#include "migwatch/export/web/error.h"
#include "migwatch/export/web/quote.h"

namespace migwatch {
namespace {

constexpr std::string_view kBcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

// Layout of a bcrypt hash: "$2b$" + 2-digit cost + "$" + 22 salt characters
// + 31 hash characters.
constexpr std::size_t kBcryptLength = 60;
constexpr std::size_t kSaltBegin = 7;
constexpr std::size_t kSaltLast = kSaltBegin + 21;

[[noreturn]] void Fail(std::string_view source, std::string_view message) {
  throw WebError("web config " + std::string(source) + ": " + std::string(message));
}

std::size_t AlphabetIndex(char c) { return kBcryptAlphabet.find(c); }

// The two-digit cost of a hash already checked for shape.
int BcryptCost(std::string_view hash) { return (hash[4] - '0') * 10 + (hash[5] - '0'); }

// Why a hash is unusable, or an empty string if it is fine.
std::string BcryptProblem(std::string_view hash) {
  if (!(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$"))) {
    return "is not a bcrypt hash (expected $2a$, $2b$ or $2y$, e.g. from "
           "\"htpasswd -nBC 10 USER\")";
  }
  if (hash.size() != kBcryptLength || hash[6] != '$' || hash.find_first_not_of("0123456789", 4) != 6) {
    return "is not a well-formed bcrypt hash (expected 60 characters like "
           "$2b$10$ followed by 53 of [./A-Za-z0-9])";
  }
  for (std::size_t i = kSaltBegin; i < kBcryptLength; ++i) {
    if (AlphabetIndex(hash[i]) == std::string_view::npos) {
      return "is not a well-formed bcrypt hash (character " + QuoteForMessage(hash.substr(i, 1)) +
             " is not in [./A-Za-z0-9])";
    }
  }
  // The last character of the salt carries 2 bits and the last of the hash 4
  // bits; the unused low bits are zero in every generated hash. A hash
  // with other bits set would never compare equal to what crypt_r computes.
  if (AlphabetIndex(hash[kSaltLast]) % 16 != 0 || AlphabetIndex(hash[kBcryptLength - 1]) % 4 != 0) {
    return "is not a canonically encoded bcrypt hash (damaged or edited?)";
  }
  if (const int cost = BcryptCost(hash); cost < kMinBcryptCost || cost > kMaxBcryptCost) {
    return "has bcrypt cost " + std::to_string(cost) + ", outside " + std::to_string(kMinBcryptCost) + "-" +
           std::to_string(kMaxBcryptCost) +
           " (4 is bcrypt's minimum; above 14 every failed login would "
           "cost seconds of CPU)";
  }
  return {};
}

void ParseUsers(const YAML::Node& node, std::string_view source, WebConfig& config) {
  if (node.IsNull()) {
    return;
  }
  if (!node.IsMap()) {
    Fail(source, "basic_auth_users must be a mapping of user name to hash");
  }
  for (const auto& entry : node) {
    if (!entry.first.IsScalar() || entry.first.Scalar().empty()) {
      Fail(source, "basic_auth_users: user names must be non-empty strings");
    }
    const std::string& user = entry.first.Scalar();
    if (user.find(':') != std::string::npos) {
      // RFC 7617 splits "user:password" at the first colon.
      Fail(source, "user " + QuoteForMessage(user) + ": a user name cannot contain ':' in basic auth");
    }
    if (!entry.second.IsScalar()) {
      Fail(source, "user " + QuoteForMessage(user) + ": the password hash must be a string");
    }
    const std::string& encoded = entry.second.Scalar();
    if (const std::string problem = BcryptProblem(encoded); !problem.empty()) {
      Fail(source, "user " + QuoteForMessage(user) + ": password hash " + problem);
    }
    BcryptHash hash{.encoded = encoded, .cost = BcryptCost(encoded)};
    if (!config.basic_auth_users.emplace(user, std::move(hash)).second) {
      Fail(source, "user " + QuoteForMessage(user) + " is listed more than once");
    }
  }
}

}  // namespace

WebConfig ParseWebConfig(std::string_view yaml, std::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& error) {
    // Not error.what(): its message may quote raw input such as a newline.
    const std::string position = error.mark.is_null() ? ""
                                                      : " at line " + std::to_string(error.mark.line + 1) +
                                                            ", column " + std::to_string(error.mark.column + 1);
    Fail(source, "invalid YAML" + position + ": " + EscapeForMessage(error.msg));
  }
  WebConfig config;
  if (root.IsNull()) {
    return config;
  }
  if (!root.IsMap()) {
    Fail(source, "the document must be a mapping with basic_auth_users");
  }
  std::set<std::string, std::less<>> seen;
  for (const auto& entry : root) {
    if (!entry.first.IsScalar()) {
      Fail(source, "top-level keys must be strings");
    }
    const std::string& key = entry.first.Scalar();
    if (!seen.insert(key).second) {
      Fail(source, "key " + QuoteForMessage(key) + " is given more than once");
    }
    if (key == "basic_auth_users") {
      ParseUsers(entry.second, source, config);
    } else if (key == "tls_server_config") {
      Fail(source,
           "tls_server_config is not supported: this build's HTTP server "
           "(civetweb with OpenSSL 3) crashes in the TLS handshake; terminate "
           "TLS in a reverse proxy, or listen on loopback only");
    } else if (key == "http_server_config") {
      Fail(source, "http_server_config is not supported; remove it");
    } else {
      Fail(source, "unknown key " + QuoteForMessage(key) + " (the only supported key is basic_auth_users)");
    }
  }
  return config;
}

WebConfig LoadWebConfigFile(const std::filesystem::path& path) {
  const std::string source = path.string();
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(source.c_str(), "rb"), &std::fclose);
  if (!file) {
    Fail(source, "cannot open: " + std::generic_category().message(errno));
  }
  std::string contents;
  char buffer[4096];
  std::size_t count = 0;
  while ((count = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) {
    contents.append(buffer, count);
  }
  if (std::ferror(file.get())) {
    // A directory opens fine and fails here with EISDIR.
    Fail(source, "cannot read: " + std::generic_category().message(errno));
  }
  return ParseWebConfig(contents, source);
}

}  // namespace migwatch

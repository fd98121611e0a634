#include "migwatch/export/web/basic_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <memory>
#include <optional>
#include <system_error>

#include "migwatch/export/web/error.h"

namespace migwatch {
namespace {

constexpr std::string_view kBase64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Strict standard base64 with padding, as RFC 7617 prescribes.
std::optional<std::string> DecodeBase64(std::string_view encoded) {
  std::size_t padding = 0;
  while (padding < encoded.size() && encoded[encoded.size() - 1 - padding] == '=') {
    ++padding;
  }
  if (encoded.empty() || encoded.size() % 4 != 0 || padding > 2 ||
      encoded.substr(0, encoded.size() - padding).find_first_not_of(kBase64Alphabet) != std::string_view::npos) {
    return std::nullopt;
  }
  std::string decoded(encoded.size() / 4 * 3, '\0');
  const int length =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                      reinterpret_cast<const unsigned char*>(encoded.data()), static_cast<int>(encoded.size()));
  if (length < 0) {
    return std::nullopt;
  }
  // EVP_DecodeBlock decodes whole 4-character groups, padding included.
  decoded.resize(static_cast<std::size_t>(length) - padding);
  return decoded;
}

bool StartsWithIgnoringCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

std::string_view TrimSpaces(std::string_view text) {
  const std::size_t begin = text.find_first_not_of(' ');
  if (begin == std::string_view::npos) {
    return {};
  }
  return text.substr(begin, text.find_last_not_of(' ') - begin + 1);
}

int HighestCost(const std::map<std::string, BcryptHash, std::less<>>& users) {
  int cost = kMinBcryptCost;
  for (const auto& [user, hash] : users) {
    cost = std::max(cost, hash.cost);
  }
  return cost;
}

}  // namespace

BasicAuthenticator::BasicAuthenticator(std::map<std::string, BcryptHash, std::less<>> users)
    : users_(std::move(users)) {
  if (users_.empty()) {
    throw WebError("basic auth needs at least one user");
  }
  std::array<char, CRYPT_GENSALT_OUTPUT_SIZE> setting{};
  // No random bytes passed: libcrypt takes them from the OS.
  if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(HighestCost(users_)), nullptr, 0, setting.data(),
                       static_cast<int>(setting.size())) == nullptr) {
    throw WebError("cannot make a bcrypt salt: " + std::generic_category().message(errno));
  }
  // crypt_r reads only prefix, cost and salt from a stored hash. The hash
  // part of 31 '.' is what no password produces (2^-184), so comparing with
  // it costs the same as with a real hash and never matches.
  unknown_user_hash_ = std::string(setting.data()) + std::string(31, '.');

  std::array<unsigned char, 16> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
    throw WebError("cannot get random bytes for the credential cache");
  }
  cache_key_salt_.assign(salt.begin(), salt.end());
}

bool BasicAuthenticator::CheckAuthorizationHeader(std::string_view value) const {
  constexpr std::string_view kScheme = "Basic ";
  if (!StartsWithIgnoringCase(value, kScheme)) {
    return false;
  }
  const std::optional<std::string> credentials = DecodeBase64(TrimSpaces(value.substr(kScheme.size())));
  if (!credentials) {
    return false;
  }
  // RFC 7617: the user name ends at the first colon; the password may hold
  // more.
  const std::size_t colon = credentials->find(':');
  if (colon == std::string::npos) {
    return false;
  }
  const std::string_view both(*credentials);
  return CheckCredentials(both.substr(0, colon), both.substr(colon + 1));
}

bool BasicAuthenticator::CheckCredentials(std::string_view user, std::string_view password) const {
  // crypt_r takes C strings: "secret\0anything" must not pass as "secret".
  // Refusing early tells nothing about any stored password.
  if (user.find('\0') != std::string_view::npos || password.find('\0') != std::string_view::npos) {
    return false;
  }
  std::string key = CacheKey(user, password);
  if (IsCached(key)) {
    return true;
  }
  const auto found = users_.find(user);
  const bool known_user = found != users_.end();
  const std::string& expected = known_user ? found->second.encoded : unknown_user_hash_;

  // struct crypt_data is 32 KiB: on the heap rather than on a civetweb
  // worker's stack. One per call keeps crypt_r free of shared state.
  const auto scratch = std::make_unique<crypt_data>();
  const std::string password_string(password);
  const char* const computed = crypt_r(password_string.c_str(), expected.c_str(), scratch.get());
  // On failure crypt_r returns a short token starting with '*', never a
  // 60-character hash; the length of a bcrypt hash is no secret.
  const bool hash_matches = computed != nullptr && std::string_view(computed).size() == expected.size() &&
                            CRYPTO_memcmp(computed, expected.data(), expected.size()) == 0;
  if (!(known_user && hash_matches)) {
    return false;
  }
  Remember(std::move(key));
  return true;
}

std::string BasicAuthenticator::CacheKey(std::string_view user, std::string_view password) const {
  // NUL cannot occur in either part, so it separates them unambiguously.
  std::string input = cache_key_salt_;
  input.append(user).append(1, '\0').append(password);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    // Without a key there is no caching: an empty key is never stored.
    return {};
  }
  return std::string(digest.begin(), digest.begin() + length);
}

bool BasicAuthenticator::IsCached(const std::string& key) const {
  const std::lock_guard lock(cache_mutex_);
  return !key.empty() && cache_.contains(key);
}

void BasicAuthenticator::Remember(std::string key) const {
  if (key.empty()) {
    return;
  }
  const std::lock_guard lock(cache_mutex_);
  if (!cache_.insert(key).second) {
    return;
  }
  cache_order_.push_back(std::move(key));
  if (cache_order_.size() > kCacheCapacity) {
    cache_.erase(cache_order_.front());
    cache_order_.pop_front();
  }
}

}  // namespace migwatch

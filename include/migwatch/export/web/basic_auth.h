// HTTP basic auth against bcrypt hashes.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

#include "migwatch/export/web/web_config.h"

namespace migwatch {

/// Checks HTTP basic auth credentials against the bcrypt hashes of a web
/// config, without telling an observer of response times anything about the
/// passwords:
///
/// - A known user costs one bcrypt (`crypt_r`) at the user's cost. An unknown
///   user costs one bcrypt against a random salt of the highest configured
///   cost, so "no such user" is not faster than "wrong password" (with one
///   cost for all users, as usual, the two are the same work).
/// - The computed hash is compared with the stored one in constant time
///   (`CRYPTO_memcmp`), so the time taken does not depend on how many leading
///   characters match.
/// - Successful checks are remembered so that a scraper sending the same
///   credentials every few seconds does not pay bcrypt each time. The cache
///   holds a salted SHA-256 of user and password, never the password, and at
///   most kCacheCapacity entries. A cache hit is fast, but it only happens for
///   credentials already known to be right, so it reveals nothing to someone
///   who lacks them. Failures are never cached: each costs one bcrypt, and
///   the cost is bounded by kMaxBcryptCost.
/// - User names are not treated as secrets: looking one up in the map may
///   take a little longer for some names than for others.
///
/// Thread-safe: all member functions may be called concurrently.
class BasicAuthenticator {
 public:
  /// Number of distinct successful credentials remembered; the oldest is
  /// forgotten first. A few scrapers share a handful of credentials, so this
  /// is plenty, and it bounds memory whatever clients send.
  static constexpr std::size_t kCacheCapacity = 64;

  /// @param users user name to hash, as loaded by LoadWebConfigFile; must not
  ///        be empty (no users means no authentication: do not construct one).
  /// @throws WebError if `users` is empty or no random salt can be made.
  explicit BasicAuthenticator(std::map<std::string, BcryptHash, std::less<>> users);

  BasicAuthenticator(const BasicAuthenticator&) = delete;
  BasicAuthenticator& operator=(const BasicAuthenticator&) = delete;

  /// Checks the value of an `Authorization` request header (`Basic <base64 of
  /// user:password>`, scheme case-insensitive). A missing, malformed or wrong
  /// value yields false.
  [[nodiscard]] bool CheckAuthorizationHeader(std::string_view value) const;

  /// Checks one user name and password.
  [[nodiscard]] bool CheckCredentials(std::string_view user, std::string_view password) const;

 private:
  [[nodiscard]] std::string CacheKey(std::string_view user, std::string_view password) const;
  [[nodiscard]] bool IsCached(const std::string& key) const;
  void Remember(std::string key) const;

  std::map<std::string, BcryptHash, std::less<>> users_;
  /// A bcrypt hash with a random salt of the highest configured cost that no
  /// password matches, checked for unknown users to spend the same effort.
  std::string unknown_user_hash_;
  /// Random per-process salt of the cache keys, so that a memory dump does
  /// not hold plain hashes of credentials.
  std::string cache_key_salt_;

  mutable std::mutex cache_mutex_;
  mutable std::unordered_set<std::string> cache_;
  mutable std::deque<std::string> cache_order_;
};

}  // namespace migwatch

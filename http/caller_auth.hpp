#pragma once
// Authenticates callers' `Bearer emr_...` keys: argon2id only on a cache miss, once per key
// even under a burst, on the HTTP thread (never an actor's), and last-used times written in bulk.

#include "http/api_error.hpp"
#include "http/caller_keys.hpp"
#include "storage/store.hpp"

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <variant>

namespace emr {

class caller_auth {
public:
  caller_auth(store& db, argon2_params params);
  ~caller_auth();
  caller_auth(const caller_auth&) = delete;
  caller_auth& operator=(const caller_auth&) = delete;

  /// The caller behind an Authorization header value, or a 401.
  std::variant<cached_key, api_error> authenticate(std::string_view authorization);

  /// Issues and stores a new key; the token is returned once and never kept.
  std::pair<key_record, std::string> create(std::string_view name);
  /// Revokes a key so its next request fails, on this instance at once.
  bool revoke(std::int64_t id);
  /// Revokes and reissues under the same name, atomically in the store.
  std::optional<std::pair<key_record, std::string>> rotate(std::int64_t id);

  /// Writes pending last-used times now (also done every few seconds).
  void flush_last_used();

private:
  std::variant<cached_key, api_error> verify(std::string_view public_id, std::string_view secret);
  std::shared_ptr<std::mutex> verification_lock(std::string_view public_id);

  store& db_;
  argon2_params params_;
  verified_key_cache cache_;
  std::mutex locks_mutex_;
  std::map<std::string, std::weak_ptr<std::mutex>, std::less<>> verification_locks_;
  std::mutex touched_mutex_;
  std::map<std::int64_t, std::int64_t> touched_;
  std::condition_variable_any flush_wakeup_;
  std::jthread flusher_;
};

/// The bearer token of an Authorization header value, or empty when it is not `Bearer <token>`.
std::string_view bearer_token(std::string_view authorization);

} // namespace emr

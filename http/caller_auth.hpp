#pragma once
// Authenticates callers' `Bearer emr_...` keys: argon2id only on a cache miss, once per presented
// key even under a burst, within limits on failures and on runs at once, on the HTTP thread
// (never an actor's), and last-used times written in bulk.

#include "actors/stat_field.hpp"
#include "http/api_error.hpp"
#include "http/auth_limits.hpp"
#include "http/caller_keys.hpp"
#include "http/periodic_task.hpp"
#include "storage/store.hpp"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

namespace emr {

/// Checks a presented secret against a stored hash: verify_secret, or a stand-in in tests.
using secret_verifier =
    std::function<bool(const std::string& encoded_hash, std::string_view secret)>;

/// Authentication's counters, as /admin/stats ("auth") and /metrics show them.
struct auth_stats {
  std::uint64_t argon2_verifications = 0;
  std::uint64_t shared_verifications = 0;
  std::uint64_t failures = 0;
  std::uint64_t rate_limited = 0;
  std::uint64_t busy = 0;
};

template <class F> void describe(const auth_stats& s, F&& f) {
  using enum metric_type;
  f(s.argon2_verifications, {"argon2_verifications", counter, "emr_auth_argon2_verifications_total",
                             "argon2 verifications of presented caller keys."});
  f(s.shared_verifications,
    {"shared_verifications", counter, "emr_auth_shared_verifications_total",
     "Caller requests that took the answer of an argon2 run already under way for the same key."});
  f(s.failures, {"failures", counter, "emr_auth_failures_total",
                 "Caller requests answered 401: no, malformed, unknown, wrong or revoked key."});
  f(s.rate_limited, {"rate_limited", counter, "emr_auth_rate_limited_total",
                     "Caller requests answered 429: too many failed verifications for the key id "
                     "or from the address."});
  f(s.busy, {"busy", counter, "emr_auth_busy_total",
             "Caller requests answered 503: every argon2 slot stayed busy."});
}

class caller_auth {
public:
  caller_auth(store& db, argon2_params params, auth_limits limits = {},
              secret_verifier verifier = verify_secret,
              failure_budget::clock now = std::chrono::steady_clock::now);
  ~caller_auth();
  caller_auth(const caller_auth&) = delete;
  caller_auth& operator=(const caller_auth&) = delete;

  /// The caller behind an Authorization header value sent from client_address; else a 401, a
  /// 429 when the key id or the address failed too often, or a 503 when argon2 is saturated.
  std::variant<cached_key, api_error> authenticate(std::string_view authorization,
                                                   std::string_view client_address);

  /// Issues and stores a new key with its limits; the token is returned once and never kept.
  std::pair<key_record, std::string> create(std::string_view name, const key_limits& limits = {});
  /// Revokes a key so its next request fails, on this instance at once, even one whose
  /// verification is under way.
  bool revoke(std::int64_t id);
  /// Keys revoked elsewhere (by another replica, in the store they share): each is forgotten
  /// here the first time it is seen revoked, so its next request reads the store and is refused.
  void forget_revoked(const std::vector<key_record>& keys);
  /// Revokes and reissues under the same name, atomically in the store.
  std::optional<std::pair<key_record, std::string>> rotate(std::int64_t id);

  /// Writes pending last-used times now (also done every few seconds).
  void flush_last_used();

  /// argon2 runs, failures and refusals so far.
  auth_stats stats() const;

private:
  using outcome = std::variant<cached_key, api_error>;
  /// One argon2 verification of a presented (public id, secret) that callers presenting the
  /// same pair meanwhile wait for and share.
  struct verification {
    bool done = false;
    outcome result;
    std::condition_variable finished;
  };

  outcome verify(std::string_view public_id, std::string_view secret,
                 std::string_view client_address);
  outcome verify_within_limits(std::string_view public_id, std::string_view secret,
                               std::string_view client_address);

  store& db_;
  argon2_params params_;
  secret_verifier verifier_;
  auth_limits limits_;
  verified_key_cache cache_;
  failure_budget key_failures_;
  failure_budget address_failures_;
  verification_slots slots_;
  std::mutex verifications_mutex_;
  std::unordered_map<std::string, std::shared_ptr<verification>>
      verifications_; ///< by presented_key_digest
  std::atomic<std::uint64_t> argon2_runs_{0};
  std::atomic<std::uint64_t> shared_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> rate_limited_{0};
  std::atomic<std::uint64_t> busy_{0};
  std::mutex touched_mutex_;
  std::map<std::int64_t, std::int64_t> touched_;
  std::mutex revoked_mutex_;
  std::set<std::int64_t> forgotten_revoked_; ///< revoked keys forget_revoked has forgotten

  periodic_task flusher_; ///< last: stopped before anything it flushes goes
};

/// The bearer token of an Authorization header value, or empty when it is not `Bearer <token>`.
std::string_view bearer_token(std::string_view authorization);

} // namespace emr

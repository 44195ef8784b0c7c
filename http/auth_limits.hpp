#pragma once
// What authentication may spend: failed argon2 verifications per key id and per client address,
// and argon2 runs at once. Plain logic on an injected clock; caller_auth applies it.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace emr {

struct auth_limits {
  /// Failed verifications a key id may cost per minute, in a burst or spread out.
  std::uint32_t failures_per_minute_per_key = 20;
  /// Failed verifications one client address may cause per minute, across key ids.
  std::uint32_t failures_per_minute_per_address = 60;
  /// argon2 runs in progress at once; 0: half the cores, at least one.
  std::uint32_t max_concurrent_verifications = 0;
  /// How long a verification waits for a free run before the caller gets 503.
  std::chrono::milliseconds verification_wait{1000};
};

/// Failed attempts each subject (a key id, a client address) may cause: `per_minute` at once,
/// earned back evenly over a minute (a token bucket, kept as GCRA's one time per subject).
/// Subjects back at a full budget are forgotten; beyond `capacity` subjects the one charged
/// longest ago goes first. Thread-safe.
class failure_budget {
public:
  using clock = std::function<std::chrono::steady_clock::time_point()>;

  failure_budget(std::uint32_t per_minute, std::size_t capacity,
                 clock now = std::chrono::steady_clock::now);

  /// Takes one attempt from subject's budget: nullopt when taken, else how long until one is
  /// available (nothing taken then).
  std::optional<std::chrono::milliseconds> take(std::string_view subject);
  /// Returns what take took: the attempt did not fail.
  void give_back(std::string_view subject);

  /// Subjects remembered (those not back at a full budget, until pushed out).
  std::size_t size() const;

private:
  using time_point = std::chrono::steady_clock::time_point;
  struct subject_state {
    time_point budget_full_at; ///< GCRA's theoretical arrival time
    std::list<std::string>::iterator charge_position;
  };
  void forget(std::unordered_map<std::string, subject_state>::iterator);

  std::chrono::nanoseconds interval_; ///< one attempt earned back
  std::chrono::nanoseconds burst_;    ///< how far ahead of now budget_full_at may run
  std::size_t capacity_;
  clock now_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, subject_state> subjects_;
  std::list<std::string> charge_order_; ///< subjects, charged longest ago first
};

/// At most `limit` argon2 runs at once, so authentication never takes every core.
class verification_slots {
public:
  explicit verification_slots(std::uint32_t limit);

  /// Takes a slot, waiting up to `wait` for one; false when none came free.
  bool acquire(std::chrono::milliseconds wait);
  void release();

  std::uint32_t limit() const { return limit_; }

private:
  std::uint32_t limit_;
  std::uint32_t in_use_ = 0;
  std::mutex mutex_;
  std::condition_variable freed_;
};

/// max_concurrent_verifications as configured, with 0 resolved against the cores.
std::uint32_t concurrent_verifications(const auth_limits&);

} // namespace emr

#pragma once
// What each caller key may use (key_limits: requests and tokens a minute, tokens a UTC day) and
// what it used of it, checked before a request does any upstream work. Per replica for the
// minute; a day's tokens count every replica's, read through the usage meter every few seconds.

#include "http/api_error.hpp"
#include "http/key_usage_meter.hpp"

#include <array>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <variant>

namespace emr {

class key_quotas {
public:
  /// `now`: unix seconds (injected by tests).
  explicit key_quotas(key_usage_meter& usage, std::function<std::int64_t()> now = unix_now);

  /// Every key's limits, as the store holds them (at start, and when another replica changed
  /// a key).
  void load(const std::vector<key_record>& keys);
  void set(std::int64_t key_id, const key_limits& limits);

  /// What admit counted, for settle.
  struct admission {
    std::int64_t key_id = 0;
    std::int64_t tokens = 0; ///< estimated
    std::int64_t at = 0;     ///< unix second
    /// The key's limits it was counted against; 0: none (the key had no limits then).
    std::uint64_t limits_generation = 0;
  };
  /// Counts `requests` requests needing about `tokens` tokens against the key's limits, or says
  /// why not: 429 with the wait until they fit, or 400 when they never can.
  std::variant<admission, api_error> admit(std::int64_t key_id, std::int64_t requests,
                                           std::int64_t tokens);
  /// Once answered, and recorded in the usage meter: the tokens the answers' usage counted
  /// replace the estimate admitted.
  void settle(const admission& admitted, std::int64_t counted);

  /// How long a day's count read through the meter is trusted before it is read again.
  static constexpr std::int64_t day_refresh_s = 5;

private:
  /// The last minute's counts, one slot a second.
  struct minute_window {
    std::array<std::int64_t, 60> second{}, requests{}, tokens{};
    void add(std::int64_t now, std::int64_t r, std::int64_t t);
    /// Adds `t` tokens to the slot of second `at`, if it is still in the window at `now`.
    void correct(std::int64_t at, std::int64_t now, std::int64_t t);
    std::pair<std::int64_t, std::int64_t> sums(std::int64_t now) const;
    /// Seconds until enough of the window has passed for `excess_r` requests and `excess_t`
    /// tokens to leave it.
    std::int64_t wait(std::int64_t now, std::int64_t excess_r, std::int64_t excess_t) const;
  };
  struct key_state {
    key_limits limits;
    minute_window minute;
    std::int64_t day = -1;        ///< of day_counted
    std::int64_t day_counted = 0; ///< every replica's tokens, as last read through the meter
    std::int64_t day_read_at = 0;
    std::int64_t day_since = 0;     ///< counted here since that read
    std::int64_t day_in_flight = 0; ///< estimates admitted and not yet settled
    bool reading = false;           ///< one thread reads the day's count; the others use the last
    /// Which setting of limits this is: a request admitted under another (or under none) has no
    /// estimate in flight here to take back.
    std::uint64_t generation = 0;
  };
  /// Reads the key's tokens today through the meter when the last read is stale. A store that
  /// cannot be read leaves the last count in force (fail static).
  void refresh_day(std::int64_t key_id, std::int64_t now);

  key_usage_meter& usage_;
  std::function<std::int64_t()> now_;
  std::mutex mutex_;
  std::unordered_map<std::int64_t, key_state> keys_; ///< only keys with a limit
  std::uint64_t last_generation_ = 0;
};

} // namespace emr

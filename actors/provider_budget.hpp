#pragma once
// A provider's rate limits as its batcher knows them, and how fast the batcher may spend them.
// Each limit (requests and tokens per minute) comes from the operator, else from the provider's
// rate-limit headers; the requests limit, else, from a 429: at a refusal, the calls this batcher
// sent in the last minute are at most the limit. Pure logic on an injected clock.
//
// Spending is paced by a bucket per measure that holds a tenth of a minute's limit and refills at
// nine tenths of it: any 60 s window then holds at most the limit, and a provider with budget to
// spare takes a burst at once, which is what keeps latency low while it lasts. Behind the buckets,
// a sliding minute of the calls actually sent is the hard stop; for a limit learned from a 429
// that named its wait (Retry-After), that wait says better than the estimate when calls may go.

#include "actors/messages.hpp"

#include <cstdint>
#include <deque>
#include <string_view>

namespace emr {

enum class limit_source : std::uint8_t { none, operator_set, headers, refusal };
std::string_view to_string(limit_source source);

/// One measure of a per-minute limit and the bucket that paces spending it.
class minute_bucket {
public:
  /// Sets the limit; `full` starts the bucket full, else it keeps what it holds (at most the new
  /// capacity). 0 removes the limit.
  void set(std::uint64_t per_minute, limit_source source, clock_time now, bool full);
  std::uint64_t per_minute() const { return per_minute_; }
  limit_source source() const { return source_; }
  bool limited() const { return per_minute_ > 0; }

  /// When the bucket holds `amount` (at most its capacity; then it may go into debt).
  clock_time ready_at(clock_time now, double amount) const;
  void spend(clock_time now, double amount);
  /// The provider says only `left` remain: the bucket never holds more.
  void at_most(clock_time now, double left);
  /// The bucket holds `amount` first at `at` (sooner if it already does).
  void ready_by(clock_time now, double amount, clock_time at);
  /// The operator or the provider said so: a hard limit, not an estimate.
  bool stated() const {
    return source_ == limit_source::operator_set || source_ == limit_source::headers;
  }
  /// What the bucket holds now, as a share of its capacity: 1 when unlimited.
  double share(clock_time now) const;

private:
  double level(clock_time now) const;
  double capacity() const;
  double per_ns() const;

  std::uint64_t per_minute_ = 0;
  limit_source source_ = limit_source::none;
  double level_ = 0; ///< at `filled_`
  clock_time filled_{};
};

class provider_budget {
public:
  static constexpr std::chrono::seconds minute{60};

  provider_budget() = default;
  /// The operator's limits (0: not set); a limit the operator clears is learned again.
  void configure(std::uint64_t requests_per_minute, std::uint64_t tokens_per_minute,
                 clock_time now);

  /// Both buckets hold nothing now and refill from here: a fleet's replica that starts spending
  /// its share alone has no burst to spend, because the shared bucket's may be spent already.
  void empty_buckets(clock_time now);
  /// A call carrying `tokens` went upstream.
  void on_sent(clock_time now, std::uint64_t tokens);
  /// An answer's rate-limit headers.
  void on_headers(clock_time now, const rate_limit_headers& headers);
  /// The provider refused a call with 429, asking for `retry_after` if it said.
  void on_refused(clock_time now, std::optional<std::chrono::milliseconds> retry_after);
  /// Fewer calls than this in the minute before a 429 teach no limit: the refusal may as well be
  /// a moment's overload, and a few calls a minute need no pacing.
  static constexpr std::size_t least_calls_to_learn = 10;

  /// When the next call may go: `now` when at once.
  clock_time next_send(clock_time now) const;
  /// The batch size worth a call now: 1 text while the budget is mostly left (latency first),
  /// rising to a full call as it runs out (compression first). `shared`: what a fleet's shared
  /// budget holds, as a share of its capacity, when the fleet's is the tighter.
  std::size_t flush_threshold(clock_time now, std::size_t max_texts, double shared = 1) const;

  const minute_bucket& requests() const { return requests_; }
  const minute_bucket& tokens() const { return tokens_; }
  /// What the limit leaves of the last minute; -1 when no limit is known.
  std::int64_t requests_left(clock_time now) const;
  std::int64_t tokens_left(clock_time now) const;

private:
  struct sent_call {
    clock_time at;
    std::uint64_t tokens;
  };
  void forget_before(clock_time now) const;
  /// A limit learned from a refusal is raised a tenth after a clean minute spent near it, so a
  /// limit learned while someone else shared the key does not bind forever.
  void grow_learned(clock_time now);

  minute_bucket requests_, tokens_;
  std::uint64_t operator_requests_ = 0, operator_tokens_ = 0;
  /// Calls sent in the last minute; trimmed lazily, hence mutable.
  mutable std::deque<sent_call> sent_;
  mutable std::uint64_t sent_tokens_ = 0;
  clock_time last_refusal_{};
  bool refusal_named_wait_ = false; ///< the latest 429 said when to come back
  clock_time last_growth_{};
};

} // namespace emr

#pragma once
// When a batcher sends: a partial batch leaves as soon as the arrivals that form it stop (a hold
// for company that is only paid while company actually comes), and AIMD on the number of
// concurrent upstream calls, which starts wide and shrinks only on evidence (429s, timeouts).
// Pure logic on an injected clock.

#include "actors/messages.hpp"

#include <chrono>
#include <cstddef>
#include <optional>

namespace emr {

struct flush_settings {
  std::chrono::nanoseconds window{std::chrono::milliseconds{50}}; ///< longest wait for company
  std::chrono::nanoseconds linger{
      std::chrono::microseconds{500}}; ///< pause in arrivals that ends a hold
  /// After a quiet spell, how long a first arrival waits for callers that came with it.
  std::chrono::nanoseconds coalesce{std::chrono::microseconds{250}};
  std::size_t initial_concurrency = 16;
  std::size_t max_concurrency = 16;
};

/// How an attempt's end should move the call window.
enum class call_signal { success, congestion, neutral };

class flush_policy {
public:
  explicit flush_policy(flush_settings settings);

  /// A chunk arrived at `now`.
  void on_arrival(clock_time now);

  /// Whether a queue whose oldest chunk arrived at `oldest` should go now; if not, when to look
  /// again (`recheck`). Call it only while a call slot is free. Full batches go at once; a partial
  /// one waits while company is due: requests emr is still reading (`arriving`), or arrivals
  /// the gaps between them predict; or, while the provider's budget runs low, until it holds
  /// the flush threshold's texts (`below_threshold`); never past `oldest + window`.
  struct decision {
    bool flush_now = false;
    clock_time recheck{};
    bool held = false; ///< the batch waited for company (or would have): evidence for on_flushed
    bool burst_ended = false; ///< it goes because its arrivals stopped: see on_burst_flushed
  };
  decision decide(clock_time now, clock_time oldest, bool full, bool below_threshold = false,
                  bool arriving = false) const;

  /// A call may start: a slot is free and the provider is not paused.
  bool can_send(clock_time now) const { return in_flight_ < window_ && now >= paused_until_; }
  void on_call_started() { ++in_flight_; }
  void on_call_finished(call_signal signal);
  /// The provider asked for a pause (429 with Retry-After).
  void pause_until(clock_time until);
  /// A batch left carrying chunks of `callers` callers. A held batch is evidence either way of
  /// whether holding pays; an unheld one that found company anyway says that company exists.
  void on_flushed(std::size_t callers, bool held);
  /// A held batch went at `now` because its arrivals stopped. An arrival within 8 lingers after
  /// it, or while calls are out, says the burst had not ended (a busy host pauses a burst longer
  /// than its gaps suggest): the shortest hold doubles; a quiet spell shrinks it back.
  void on_burst_flushed(clock_time now) { burst_flushed_at_ = now; }

  std::size_t window() const { return window_; }
  std::size_t in_flight() const { return in_flight_; }
  clock_time paused_until() const { return paused_until_; }
  /// Whether the batcher currently waits for company before sending a partial batch.
  bool holding() const;
  /// How long a held batch waits after the last arrival.
  std::chrono::nanoseconds hold_gap() const;
  double company() const { return company_; }
  std::chrono::nanoseconds arrival_gap() const { return gap_; }
  /// Arrivals are close enough together that company is due within the linger.
  bool dense() const;
  /// A pause in arrivals this long ends a burst: half the window (at least 8 lingers).
  std::chrono::nanoseconds burst_gap() const;
  /// The longest a held batch waits after its last arrival: half the window.
  std::chrono::nanoseconds longest_hold() const;

private:
  flush_settings settings_;
  std::size_t window_;
  std::size_t in_flight_ = 0;
  std::size_t successes_in_window_ = 0;
  clock_time paused_until_{};
  clock_time last_arrival_{};
  bool seen_arrival_ = false;
  bool seen_gap_ = false;
  std::chrono::nanoseconds gap_{0};        ///< smoothed time between arrivals within bursts
  std::chrono::nanoseconds gap_spread_{0}; ///< smoothed deviation of that time
  std::chrono::nanoseconds last_gap_{0}; ///< the latest gap alone: a burst shows at its 2nd arrival
  std::chrono::nanoseconds shortest_hold_; ///< at least linger; grows when bursts are cut short
  std::optional<clock_time> burst_flushed_at_;
  double company_ = 1.0; ///< smoothed share of batches that carried several callers
};

} // namespace emr

#include "actors/flush_policy.hpp"

#include <algorithm>

namespace emr {

flush_policy::flush_policy(flush_settings settings)
    : settings_(settings),
      window_(std::clamp<std::size_t>(settings.initial_concurrency, 1, settings.max_concurrency)) {}

void flush_policy::on_arrival(clock_time now) {
  if (seen_arrival_) {
    // A long idle spell says nothing about the next burst beyond "not dense"; capping it lets
    // a new burst be recognised within a few arrivals.
    auto gap = std::min<std::chrono::nanoseconds>(now - last_arrival_, settings_.window);
    // Smoothed like TCP's round-trip time (RFC 6298): arrivals come in clumps on a busy host,
    // and the spread, not just the mean, says how long the next one may take.
    if (seen_gap_) {
      auto deviation = gap > gap_ ? gap - gap_ : gap_ - gap;
      gap_spread_ = (3 * gap_spread_ + deviation) / 4;
      gap_ = (7 * gap_ + gap) / 8;
    } else {
      gap_ = gap;
      gap_spread_ = gap / 2;
    }
    last_gap_ = gap;
    seen_gap_ = true;
  }
  seen_arrival_ = true;
  last_arrival_ = now;
}

bool flush_policy::dense() const {
  // The smoothed gap rides out one hiccup inside a burst; the latest gap alone catches the
  // start of a burst after an idle spell, so at most its first arrival goes out alone.
  return seen_gap_ && std::min(gap_, last_gap_) < settings_.linger;
}

bool flush_policy::holding() const {
  // Hold only while recent holds show that company does come: a lone closed-loop caller never
  // brings any, however close its requests follow each other.
  return seen_arrival_ && company_ >= 0.25 && hold_gap() > std::chrono::nanoseconds{0};
}

std::chrono::nanoseconds flush_policy::hold_gap() const {
  // While arrivals are dense, wait as long as a gap plausibly lasts (mean plus four spreads, at
  // most half the window): on a busy host arrivals come in clumps, and a pause inside a burst
  // must not split it. Otherwise only the coalescing wait: enough to catch callers that arrive
  // together after a quiet spell (a burst's first few, a batch request's sub-requests) for a
  // price a lone caller hardly notices.
  auto gap =
      dense()
          ? std::clamp<std::chrono::nanoseconds>(gap_ + 4 * gap_spread_, settings_.linger,
                                                 std::max(settings_.linger, settings_.window / 2))
          : settings_.coalesce;
  return std::min<std::chrono::nanoseconds>(settings_.window, gap);
}

flush_policy::decision flush_policy::decide(clock_time now, clock_time oldest, bool full,
                                            bool partial_call_out) const {
  auto window_end = oldest + settings_.window;
  bool held = holding();
  if (full || now >= window_end)
    return {true, now, held};
  // A partial call is already out: whatever arrives meanwhile goes with the next one, sent when
  // that call returns (the batcher reconsiders then) or when the window ends.
  if (partial_call_out)
    return {false, window_end, held};
  if (!held)
    return {true, now, held};
  auto hold_end = std::min(window_end, last_arrival_ + hold_gap());
  if (now >= hold_end)
    return {true, now, held};
  return {false, hold_end, held};
}

void flush_policy::on_call_finished(call_signal signal) {
  if (in_flight_ > 0)
    --in_flight_;
  switch (signal) {
  case call_signal::success:
    // Additive increase: one more slot per window's worth of successes.
    if (++successes_in_window_ >= window_) {
      successes_in_window_ = 0;
      window_ = std::min(window_ + 1, settings_.max_concurrency);
    }
    break;
  case call_signal::congestion:
    window_ = std::max<std::size_t>(1, window_ / 2);
    successes_in_window_ = 0;
    break;
  case call_signal::neutral:
    break;
  }
}

void flush_policy::pause_until(clock_time until) {
  paused_until_ = std::max(paused_until_, until);
}

void flush_policy::on_flushed(std::size_t callers, bool held) {
  if (held || callers > 1)
    company_ = 0.9 * company_ + 0.1 * (callers > 1 ? 1.0 : 0.0);
}

} // namespace emr

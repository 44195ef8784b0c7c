#include "actors/flush_policy.hpp"

#include <algorithm>

namespace emr {

flush_policy::flush_policy(flush_settings settings)
    : settings_(settings),
      window_(std::clamp<std::size_t>(settings.initial_concurrency, 1, settings.max_concurrency)),
      shortest_hold_(settings.linger) {}

void flush_policy::on_arrival(clock_time now) {
  if (burst_flushed_at_) {
    // The burst had not ended if it resumes while calls are still out: callers waiting for their
    // answers do not send again, so these are others of the burst that a busy host delayed.
    // Once every call is back, an arrival may be an answered caller's next request (a closed
    // loop on a fast provider sends again within a millisecond): no evidence either way.
    auto since = now - *burst_flushed_at_;
    shortest_hold_ = in_flight_ > 0 && since < settings_.window
                         ? std::min(2 * shortest_hold_, longest_hold())
                         : std::max(settings_.linger, 3 * shortest_hold_ / 4);
    burst_flushed_at_.reset();
  }
  if (seen_arrival_) {
    auto gap = std::min<std::chrono::nanoseconds>(now - last_arrival_, settings_.window);
    // Only gaps inside a burst teach how long the next arrival of a burst may take: a quiet
    // spell between bursts (a provider's latency in a closed loop, seconds between jobs) would
    // make every burst wait that long after its last arrival.
    if (gap < burst_gap()) {
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
      seen_gap_ = true;
    }
    last_gap_ = gap;
  }
  seen_arrival_ = true;
  last_arrival_ = now;
}

std::chrono::nanoseconds flush_policy::longest_hold() const {
  return std::max(settings_.linger, settings_.window / 2);
}

std::chrono::nanoseconds flush_policy::burst_gap() const {
  // As long as the longest hold: a busy host pauses a burst for tens of milliseconds, and those
  // pauses must teach the hold, or the burst is cut at each of them.
  return std::max(8 * settings_.linger, longest_hold());
}

bool flush_policy::dense() const {
  // Inside a burst (the latest gap did not end one), the smoothed gap rides out a hiccup; the
  // first arrival after a quiet spell is not dense, and waits only the coalescing time.
  return seen_gap_ && last_gap_ < burst_gap() && std::min(gap_, last_gap_) < settings_.linger;
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
  auto gap = dense() ? std::clamp<std::chrono::nanoseconds>(gap_ + 4 * gap_spread_, shortest_hold_,
                                                            longest_hold())
                     : settings_.coalesce;
  return std::min<std::chrono::nanoseconds>(settings_.window, gap);
}

flush_policy::decision flush_policy::decide(clock_time now, clock_time oldest, bool full,
                                            bool below_threshold, bool arriving) const {
  auto window_end = oldest + settings_.window;
  bool held = holding();
  if (full || now >= window_end)
    return {true, now, held};
  // The budget is running low: a call is worth more texts than this queue has yet. Arrivals or
  // the window's end will tell (the batcher reconsiders on each arrival).
  if (below_threshold)
    return {false, window_end, held};
  // Requests are still being read: company is coming, however long the host makes it take.
  // Nobody tells the batcher when the last is in, so it looks again a linger later.
  if (arriving)
    return {false, std::min(window_end, now + settings_.linger), held};
  if (!held)
    return {true, now, held};
  auto burst_end = last_arrival_ + hold_gap();
  auto hold_end = std::min(window_end, burst_end);
  if (now >= hold_end)
    return {true, now, held, dense() && burst_end <= window_end};
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

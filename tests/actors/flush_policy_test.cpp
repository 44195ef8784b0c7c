// flush_policy: AIMD on the call window and the hold-for-company decision, on an injected clock.

#include "actors/flush_policy.hpp"

#include <gtest/gtest.h>

namespace emr {
// Named: the unity build compiles this file together with other tests that also have a t0.
namespace flush_policy_tests {

using namespace std::chrono_literals;

const clock_time t0 = clock_time{} + 1000s;

flush_settings settings(std::size_t initial = 4, std::size_t max = 16,
                        std::chrono::nanoseconds coalesce = 0ns) {
  flush_settings s;
  s.window = 50ms;
  s.linger = 1ms;
  s.coalesce = coalesce;
  s.initial_concurrency = initial;
  s.max_concurrency = max;
  return s;
}

// Arrivals every `gap` starting at `from`; returns the time of the last one.
clock_time arrive(flush_policy& p, clock_time from, std::chrono::nanoseconds gap, int n) {
  clock_time t = from;
  for (int i = 0; i < n; ++i) {
    t = from + i * gap;
    p.on_arrival(t);
  }
  return t;
}

TEST(flush_policy, initial_window_is_clamped_to_max) {
  EXPECT_EQ(flush_policy{settings(4, 16)}.window(), 4u);
  EXPECT_EQ(flush_policy{settings(32, 16)}.window(), 16u);
  EXPECT_EQ(flush_policy{settings(0, 16)}.window(), 1u);
}

TEST(flush_policy, grows_by_one_after_a_window_of_successes) {
  flush_policy p{settings(4, 16)};
  for (int i = 0; i < 3; ++i) {
    p.on_call_started();
    p.on_call_finished(call_signal::success);
    EXPECT_EQ(p.window(), 4u) << "after " << i + 1 << " successes";
  }
  p.on_call_started();
  p.on_call_finished(call_signal::success);
  EXPECT_EQ(p.window(), 5u);
  // The next increase takes a full window (5) of successes.
  for (int i = 0; i < 4; ++i)
    p.on_call_finished(call_signal::success);
  EXPECT_EQ(p.window(), 5u);
  p.on_call_finished(call_signal::success);
  EXPECT_EQ(p.window(), 6u);
}

TEST(flush_policy, growth_stops_at_max_concurrency) {
  flush_policy p{settings(2, 3)};
  for (int i = 0; i < 100; ++i)
    p.on_call_finished(call_signal::success);
  EXPECT_EQ(p.window(), 3u);
}

TEST(flush_policy, congestion_halves_the_window_with_a_floor_of_one) {
  flush_policy p{settings(9, 16)};
  p.on_call_finished(call_signal::congestion);
  EXPECT_EQ(p.window(), 4u);
  p.on_call_finished(call_signal::congestion);
  EXPECT_EQ(p.window(), 2u);
  p.on_call_finished(call_signal::congestion);
  EXPECT_EQ(p.window(), 1u);
  p.on_call_finished(call_signal::congestion);
  EXPECT_EQ(p.window(), 1u);
}

TEST(flush_policy, congestion_resets_the_success_count) {
  flush_policy p{settings(4, 16)};
  for (int i = 0; i < 3; ++i)
    p.on_call_finished(call_signal::success);
  p.on_call_finished(call_signal::congestion); // window 2, count reset
  EXPECT_EQ(p.window(), 2u);
  p.on_call_finished(call_signal::success);
  EXPECT_EQ(p.window(), 2u);
  p.on_call_finished(call_signal::success);
  EXPECT_EQ(p.window(), 3u);
}

TEST(flush_policy, neutral_leaves_the_window_and_frees_the_slot) {
  flush_policy p{settings(4, 16)};
  p.on_call_started();
  p.on_call_started();
  EXPECT_EQ(p.in_flight(), 2u);
  p.on_call_finished(call_signal::neutral);
  EXPECT_EQ(p.window(), 4u);
  EXPECT_EQ(p.in_flight(), 1u);
  for (int i = 0; i < 10; ++i)
    p.on_call_finished(call_signal::neutral);
  EXPECT_EQ(p.window(), 4u);
  EXPECT_EQ(p.in_flight(), 0u);
}

TEST(flush_policy, can_send_respects_the_window) {
  flush_policy p{settings(2, 16)};
  EXPECT_TRUE(p.can_send(t0));
  p.on_call_started();
  EXPECT_TRUE(p.can_send(t0));
  p.on_call_started();
  EXPECT_FALSE(p.can_send(t0));
  p.on_call_finished(call_signal::neutral);
  EXPECT_TRUE(p.can_send(t0));
}

TEST(flush_policy, can_send_respects_pause_until) {
  flush_policy p{settings(4, 16)};
  p.pause_until(t0 + 2s);
  EXPECT_EQ(p.paused_until(), t0 + 2s);
  EXPECT_FALSE(p.can_send(t0));
  EXPECT_FALSE(p.can_send(t0 + 1999ms));
  EXPECT_TRUE(p.can_send(t0 + 2s));
  // An earlier pause never shortens a later one.
  p.pause_until(t0 + 1s);
  EXPECT_EQ(p.paused_until(), t0 + 2s);
  p.pause_until(t0 + 3s);
  EXPECT_EQ(p.paused_until(), t0 + 3s);
}

TEST(flush_policy, full_queue_flushes_now_even_while_holding) {
  flush_policy p{settings()};
  auto last = arrive(p, t0, 100us, 5);
  ASSERT_TRUE(p.holding());
  auto d = p.decide(last, t0, true);
  EXPECT_TRUE(d.flush_now);
}

TEST(flush_policy, window_expiry_flushes_even_while_holding) {
  flush_policy p{settings()};
  // Dense arrivals for longer than the window keep the hold going, but the oldest's window ends.
  auto last = arrive(p, t0, 100us, 600);
  ASSERT_TRUE(p.holding());
  EXPECT_TRUE(p.decide(last, t0, false).flush_now) << "oldest waited 59.9 ms";
  EXPECT_FALSE(p.decide(last, last - 1ms, false).flush_now) << "a younger oldest still holds";
  EXPECT_TRUE(p.decide(t0 + 50ms, t0, false).flush_now);
}

TEST(flush_policy, first_arrival_flushes_at_once) {
  flush_policy p{settings()};
  p.on_arrival(t0);
  EXPECT_FALSE(p.holding());
  EXPECT_TRUE(p.decide(t0, t0, false).flush_now);
}

TEST(flush_policy, a_first_arrival_waits_the_coalescing_time_for_its_companions) {
  flush_policy p{settings(4, 16, 250us)};
  p.on_arrival(t0);
  ASSERT_TRUE(p.holding());
  auto d = p.decide(t0, t0, false);
  EXPECT_FALSE(d.flush_now);
  EXPECT_EQ(d.recheck, t0 + 250us);
  // A companion 50 us later makes the arrivals dense: the hold stretches to a linger past it.
  p.on_arrival(t0 + 50us);
  EXPECT_TRUE(p.dense());
  EXPECT_EQ(p.decide(t0 + 50us, t0, false).recheck, t0 + 50us + 1ms);
}

TEST(flush_policy, sparse_arrivals_wait_only_the_coalescing_time) {
  flush_policy p{settings(4, 16, 250us)};
  auto last = arrive(p, t0, 5ms, 10);
  EXPECT_FALSE(p.dense());
  EXPECT_EQ(p.hold_gap(), 250us);
  EXPECT_TRUE(p.decide(last + 250us, last, false).flush_now);
  // Holds that bring nobody stop being paid: 0.9^14 < 0.25.
  for (int i = 0; i < 14; ++i)
    p.on_flushed(1, true);
  EXPECT_FALSE(p.holding());
  EXPECT_TRUE(p.decide(last, last, false).flush_now);
}

TEST(flush_policy, sparse_arrivals_flush_at_once) {
  flush_policy p{settings()};
  auto last = arrive(p, t0, 1ms, 10); // gap == linger: not dense
  EXPECT_FALSE(p.holding());
  EXPECT_EQ(p.arrival_gap(), 1ms);
  auto d = p.decide(last, last, false);
  EXPECT_TRUE(d.flush_now);
  last = arrive(p, last + 5ms, 5ms, 10);
  EXPECT_FALSE(p.holding());
  EXPECT_TRUE(p.decide(last, last, false).flush_now);
}

TEST(flush_policy, dense_arrivals_hold_until_last_arrival_plus_hold_gap) {
  flush_policy p{settings()};
  auto last = arrive(p, t0, 100us, 5);
  ASSERT_TRUE(p.holding());
  EXPECT_EQ(p.arrival_gap(), 100us);
  // hold_gap = max(linger, 4 * gap) = 1 ms
  EXPECT_EQ(p.hold_gap(), 1ms);
  auto d = p.decide(last, t0, false);
  EXPECT_FALSE(d.flush_now);
  EXPECT_EQ(d.recheck, last + 1ms);
  EXPECT_FALSE(p.decide(last + 999us, t0, false).flush_now);
  EXPECT_TRUE(p.decide(last + 1ms, t0, false).flush_now);
}

TEST(flush_policy, hold_gap_grows_with_the_spread_of_the_gaps) {
  flush_policy steady{settings()};
  arrive(steady, t0, 400us, 20);
  ASSERT_TRUE(steady.holding());
  EXPECT_EQ(steady.hold_gap(), 1ms) << "regular gaps: one linger is plenty";
  // Clumpy arrivals (a busy host): the same mean gap, but pauses up to 900 us.
  flush_policy clumpy{settings()};
  auto t = t0;
  for (int i = 0; i < 40; ++i) {
    t += (i % 2) ? 900us : 100us;
    clumpy.on_arrival(t);
  }
  ASSERT_TRUE(clumpy.dense());
  EXPECT_GT(clumpy.hold_gap(), 1500us);
  EXPECT_LE(clumpy.hold_gap(), 25ms) << "never more than half the window";
  auto d = clumpy.decide(t, t, false);
  EXPECT_FALSE(d.flush_now);
  EXPECT_EQ(d.recheck, t + clumpy.hold_gap());
}

TEST(flush_policy, a_hold_never_passes_oldest_plus_window) {
  flush_policy p{settings()};
  auto last = arrive(p, t0, 100us, 5); // last = t0 + 400us
  ASSERT_TRUE(p.holding());
  auto oldest = last - 49600us; // window ends 400 us after the last arrival
  auto d = p.decide(last, oldest, false);
  EXPECT_FALSE(d.flush_now);
  EXPECT_EQ(d.recheck, oldest + 50ms);
  EXPECT_TRUE(p.decide(oldest + 50ms, oldest, false).flush_now);
}

TEST(flush_policy, lone_caller_evidence_stops_holding) {
  flush_policy p{settings()};
  auto last = arrive(p, t0, 100us, 5);
  ASSERT_TRUE(p.holding());
  EXPECT_DOUBLE_EQ(p.company(), 1.0);
  // 0.9^13 = 0.254 still holds; 0.9^14 = 0.2288 falls below 0.25.
  for (int i = 0; i < 13; ++i)
    p.on_flushed(1, true);
  EXPECT_TRUE(p.holding());
  p.on_flushed(1, true);
  EXPECT_NEAR(p.company(), 0.2287679245, 1e-9);
  EXPECT_FALSE(p.holding());
  EXPECT_TRUE(p.decide(last, last, false).flush_now);
  // Company found without holding (the slots were busy) restores the hold.
  p.on_flushed(3, false);
  EXPECT_TRUE(p.holding());
}

TEST(flush_policy, lone_batches_sent_without_holding_say_nothing_about_company) {
  flush_policy p{settings()};
  arrive(p, t0, 100us, 5);
  for (int i = 0; i < 20; ++i)
    p.on_flushed(1, false);
  EXPECT_DOUBLE_EQ(p.company(), 1.0);
  EXPECT_TRUE(p.holding());
}

TEST(flush_policy, a_new_burst_is_recognised_at_its_second_arrival) {
  flush_policy p{settings()};
  p.on_arrival(t0);
  auto start = t0 + 10s;
  p.on_arrival(start);
  EXPECT_FALSE(p.holding()) << "an idle spell teaches nothing about gaps inside a burst";
  p.on_arrival(start + 100us);
  EXPECT_TRUE(p.holding());
  EXPECT_EQ(p.arrival_gap(), 100us);
  EXPECT_EQ(p.hold_gap(), 1ms);
}

TEST(flush_policy, a_quiet_spell_between_bursts_does_not_lengthen_the_next_bursts_hold) {
  flush_policy p{settings()};
  auto last = arrive(p, t0, 100us, 10);
  ASSERT_EQ(p.hold_gap(), 1ms);
  // 30 ms of quiet (a provider's latency in a closed loop), then the next burst.
  auto start = last + 30ms;
  p.on_arrival(start);
  EXPECT_FALSE(p.dense()) << "the first arrival after a quiet spell";
  EXPECT_EQ(p.arrival_gap(), 100us);
  p.on_arrival(start + 100us);
  EXPECT_TRUE(p.dense());
  EXPECT_EQ(p.hold_gap(), 1ms) << "a linger after the last arrival, not the quiet spell";
  auto d = p.decide(start + 100us, start, false);
  EXPECT_EQ(d.recheck, start + 1100us);
}

TEST(flush_policy, a_batch_below_the_budgets_threshold_fills_until_the_window_ends) {
  flush_policy p{settings()};
  p.on_arrival(t0);
  auto later = t0 + 10ms;
  p.on_arrival(later);
  auto d = p.decide(later + 5ms, later, false, true);
  EXPECT_FALSE(d.flush_now);
  EXPECT_EQ(d.recheck, later + 50ms) << "never past the window";
  EXPECT_TRUE(p.decide(later + 50ms, later, false, true).flush_now);
  EXPECT_TRUE(p.decide(later + 5ms, later, true, true).flush_now) << "a full batch goes anyway";
  EXPECT_TRUE(p.decide(later + 5ms, later, false, false).flush_now) << "at the threshold";
}

TEST(flush_policy, a_burst_ends_a_hold_at_its_last_arrival_plus_the_gap_with_calls_out) {
  // No hold behind calls already out: with three calls in flight, the burst that came meanwhile
  // goes once its arrivals stop, not when a call returns.
  flush_policy p{settings()};
  for (int i = 0; i < 3; ++i)
    p.on_call_started();
  auto last = arrive(p, t0, 100us, 10);
  ASSERT_TRUE(p.can_send(last));
  auto d = p.decide(last, t0, false);
  EXPECT_FALSE(d.flush_now) << "the burst is still arriving";
  EXPECT_EQ(d.recheck, last + 1ms);
  EXPECT_TRUE(p.decide(last + 1ms, t0, false).flush_now) << "the arrivals stopped";
}

TEST(flush_policy, the_call_window_starts_wide) {
  EXPECT_EQ(flush_policy{flush_settings{}}.window(), flush_settings{}.max_concurrency);
}

TEST(flush_policy, a_burst_cut_short_by_a_pause_lengthens_the_shortest_hold) {
  flush_policy p{settings()};
  auto last = arrive(p, t0, 100us, 10);
  auto d = p.decide(last + 1ms, t0, false);
  ASSERT_TRUE(d.flush_now);
  ASSERT_TRUE(d.burst_ended);
  p.on_burst_flushed(last + 1ms);
  p.on_call_started();
  // The burst goes on 3 ms later, its call still out (a busy host paused it): the hold had been
  // too short.
  last = arrive(p, last + 4ms, 100us, 10);
  EXPECT_EQ(p.hold_gap(), 2ms);
  d = p.decide(last + 2ms, last, false);
  ASSERT_TRUE(d.burst_ended);
  p.on_burst_flushed(last + 2ms);
  p.on_call_started();
  last = arrive(p, last + 5ms, 100us, 10);
  EXPECT_EQ(p.hold_gap(), 4ms);
  // Then a burst really ends: quiet follows, and the shortest hold shrinks back.
  p.on_burst_flushed(last + 4ms);
  p.on_call_finished(call_signal::success);
  p.on_call_finished(call_signal::success);
  last = arrive(p, last + 50ms, 100us, 10);
  EXPECT_EQ(p.hold_gap(), 3ms);
  EXPECT_FALSE(p.decide(last + 1ms, last, false).burst_ended);
}

TEST(flush_policy, callers_sending_again_once_answered_do_not_lengthen_the_hold) {
  // A closed loop on a provider that answers at once: the round's call is back within a
  // millisecond, and its callers' next requests follow. They are a new round, not the old one
  // cut short: the hold stays the shortest.
  flush_policy p{settings()};
  auto last = arrive(p, t0, 100us, 10);
  for (int round = 0; round < 5; ++round) {
    auto d = p.decide(last + p.hold_gap(), t0, false);
    ASSERT_TRUE(d.flush_now);
    ASSERT_TRUE(d.burst_ended);
    auto flushed = last + p.hold_gap();
    p.on_burst_flushed(flushed);
    p.on_call_started();
    p.on_call_finished(call_signal::success);
    last = arrive(p, flushed + 2ms, 100us, 10);
  }
  // Doubled each round, it would be half the window (25 ms) by now; the gaps between rounds
  // alone make it a little longer than the linger.
  EXPECT_LT(p.hold_gap(), 2ms);
}

TEST(flush_policy, only_a_dense_hold_ends_at_a_burst_end) {
  flush_policy p{settings(4, 16, 250us)};
  p.on_arrival(t0);
  auto d = p.decide(t0 + 250us, t0, false);
  EXPECT_TRUE(d.flush_now);
  EXPECT_FALSE(d.burst_ended) << "a lone first arrival's coalescing wait says nothing of bursts";
}

TEST(flush_policy, a_partial_batch_waits_while_requests_are_being_read_up_to_the_window) {
  flush_policy p{settings()};
  p.on_arrival(t0);
  EXPECT_TRUE(p.decide(t0, t0, false).flush_now) << "alone, with nothing else being read";
  auto d = p.decide(t0, t0, false, false, true);
  EXPECT_FALSE(d.flush_now) << "others are being read";
  EXPECT_EQ(d.recheck, t0 + 1ms) << "nobody says when the last is in: look again a linger later";
  d = p.decide(t0 + 49500us, t0, false, false, true);
  EXPECT_FALSE(d.flush_now);
  EXPECT_EQ(d.recheck, t0 + 50ms) << "never past the window";
  EXPECT_TRUE(p.decide(t0 + 50ms, t0, false, false, true).flush_now);
  EXPECT_TRUE(p.decide(t0, t0, true, false, true).flush_now) << "a full batch goes at once";
}

} // namespace flush_policy_tests
} // namespace emr

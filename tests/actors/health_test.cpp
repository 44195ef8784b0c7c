// provider_health: the sin-bin, the rate-limit pause and rolling metrics, on an injected clock.

#include "actors/health.hpp"

#include <gtest/gtest.h>

namespace emr {
// Named: the unity build compiles this file together with other tests that also have a t0.
namespace health_tests {

using namespace std::chrono_literals;

const clock_time t0 = clock_time{} + std::chrono::hours{1};

call_report report(outcome_class outcome, std::chrono::microseconds latency = 1ms,
                   std::int64_t retry_after_ms = -1) {
  return call_report{"p", outcome, latency, retry_after_ms, false};
}

// Records n server errors at `at`; returns how many of them changed the verdict.
int fail(provider_health& h, clock_time at, int n) {
  int changes = 0;
  for (int i = 0; i < n; ++i)
    changes += h.record(report(outcome_class::server_error), at);
  return changes;
}

TEST(provider_health, five_consecutive_server_errors_sin_bin_for_30_seconds) {
  provider_health h{health_settings{}};
  EXPECT_EQ(fail(h, t0, 4), 0);
  EXPECT_FALSE(h.sin_binned(t0));
  EXPECT_EQ(h.state(t0), provider_state::degraded);
  EXPECT_EQ(fail(h, t0, 1), 1);
  EXPECT_TRUE(h.sin_binned(t0));
  EXPECT_FALSE(h.can_serve(t0));
  EXPECT_EQ(h.state(t0), provider_state::sin_binned);
  EXPECT_EQ(h.condition().sin_bin_until, t0 + 30s);
  EXPECT_TRUE(h.condition().sin_binned);
  EXPECT_TRUE(h.sin_binned(t0 + 29999ms));
  EXPECT_FALSE(h.sin_binned(t0 + 30s));
  EXPECT_EQ(h.sin_bin_entries(), 1);
}

// Whether other providers could serve makes no difference: a failing sole provider is sin-binned
// too, so that its callers fail fast instead of each paying for the failing calls.
TEST(provider_health, the_last_provider_standing_is_sin_binned_like_any_other) {
  provider_health h{health_settings{}};
  EXPECT_EQ(fail(h, t0, 20), 1);
  EXPECT_TRUE(h.sin_binned(t0));
  EXPECT_FALSE(h.can_serve(t0));
  EXPECT_EQ(h.consecutive_failures(), 20);
  EXPECT_EQ(h.state(t0), provider_state::sin_binned);
  EXPECT_EQ(h.condition().sin_bin_until, t0 + 30s);
}

TEST(provider_health, rate_limits_never_count_toward_the_sin_bin) {
  provider_health h{health_settings{}};
  for (int i = 0; i < 50; ++i)
    h.record(report(outcome_class::rate_limited, 1ms, 1000), t0);
  EXPECT_FALSE(h.sin_binned(t0));
  EXPECT_EQ(h.consecutive_failures(), 0);
  fail(h, t0, 4);
  h.record(report(outcome_class::rate_limited, 1ms, 1000), t0);
  EXPECT_EQ(h.consecutive_failures(), 4);
  EXPECT_FALSE(h.sin_binned(t0));
}

TEST(provider_health, a_rate_limit_pauses_until_its_retry_after) {
  provider_health h{health_settings{}};
  EXPECT_TRUE(h.record(report(outcome_class::rate_limited, 1ms, 2500), t0));
  EXPECT_EQ(h.condition().paused_until, t0 + 2500ms);
  EXPECT_FALSE(h.condition().sin_binned);
  EXPECT_EQ(h.state(t0), provider_state::paused);
  EXPECT_EQ(h.state(t0 + 2499ms), provider_state::paused);
  EXPECT_EQ(h.state(t0 + 2500ms), provider_state::healthy);
  EXPECT_TRUE(h.can_serve(t0));
  // A shorter pause does not cut the longer one short, and is no change.
  EXPECT_FALSE(h.record(report(outcome_class::rate_limited, 1ms, 500), t0 + 1s));
  EXPECT_EQ(h.condition().paused_until, t0 + 2500ms);
  // A 429 without a wait is no pause.
  provider_health g{health_settings{}};
  EXPECT_FALSE(g.record(report(outcome_class::rate_limited, 1ms, -1), t0));
  EXPECT_EQ(g.state(t0), provider_state::healthy);
}

TEST(provider_health, success_resets_the_count) {
  provider_health h{health_settings{}};
  fail(h, t0, 4);
  EXPECT_EQ(h.consecutive_failures(), 4);
  h.record(report(outcome_class::success), t0);
  EXPECT_EQ(h.consecutive_failures(), 0);
  EXPECT_EQ(h.state(t0), provider_state::healthy);
  fail(h, t0, 4);
  EXPECT_FALSE(h.sin_binned(t0));
}

TEST(provider_health, caller_errors_do_not_count) {
  provider_health h{health_settings{}};
  fail(h, t0, 4);
  for (int i = 0; i < 10; ++i)
    h.record(report(outcome_class::caller_error), t0);
  EXPECT_EQ(h.consecutive_failures(), 4);
  EXPECT_FALSE(h.sin_binned(t0));
}

TEST(provider_health, advance_past_the_sin_bin_restores) {
  provider_health h{health_settings{}};
  fail(h, t0, 5);
  EXPECT_FALSE(h.advance(t0 + 29s));
  EXPECT_TRUE(h.sin_binned(t0 + 29s));
  EXPECT_TRUE(h.advance(t0 + 30s));
  EXPECT_FALSE(h.condition().sin_binned);
  EXPECT_TRUE(h.can_serve(t0 + 30s));
  EXPECT_FALSE(h.advance(t0 + 31s));
}

TEST(provider_health, re_entry_doubles_up_to_the_cap) {
  provider_health h{health_settings{}};
  auto t = t0;
  std::vector<std::int64_t> sentences;
  fail(h, t, 5);
  for (int round = 0; round < 7; ++round) {
    ASSERT_TRUE(h.sin_binned(t)) << round;
    auto until = h.condition().sin_bin_until;
    sentences.push_back(std::chrono::duration_cast<std::chrono::seconds>(until - t).count());
    t = until;
    ASSERT_TRUE(h.advance(t));
    // Half-open: one more failure sends it straight back.
    t += 1s;
    EXPECT_EQ(fail(h, t, 1), 1) << round;
  }
  EXPECT_EQ(sentences, (std::vector<std::int64_t>{30, 60, 120, 240, 480, 600, 600}));
}

TEST(provider_health, a_successful_probe_ends_the_sin_bin_early) {
  provider_health h{health_settings{}};
  fail(h, t0, 5);
  EXPECT_TRUE(h.record(report(outcome_class::success), t0 + 10s));
  EXPECT_FALSE(h.sin_binned(t0 + 10s));
  EXPECT_EQ(h.consecutive_failures(), 0);
}

TEST(provider_health, probes_are_due_every_interval_while_sin_binned) {
  health_settings s;
  s.probe_interval = 10s;
  provider_health h{s};
  EXPECT_FALSE(h.probe_due(t0));
  fail(h, t0, 5);
  EXPECT_FALSE(h.probe_due(t0));
  EXPECT_FALSE(h.probe_due(t0 + 9s));
  EXPECT_TRUE(h.probe_due(t0 + 10s));
  EXPECT_FALSE(h.probe_due(t0 + 10s)) << "marked sent";
  EXPECT_FALSE(h.probe_due(t0 + 19s));
  EXPECT_TRUE(h.probe_due(t0 + 20s));
  EXPECT_FALSE(h.probe_due(t0 + 30s)) << "the sin-bin is over";
}

TEST(provider_health, the_first_sin_bin_is_probed_halfway_through) {
  provider_health h{health_settings{}}; // sin-bin 30 s, probes at most every 30 s
  fail(h, t0, 5);
  EXPECT_FALSE(h.probe_due(t0 + 14'999ms));
  EXPECT_TRUE(h.probe_due(t0 + 15s));
  EXPECT_FALSE(h.probe_due(t0 + 29'999ms));
  EXPECT_FALSE(h.probe_due(t0 + 30s)) << "the sin-bin is over";
  // The second sentence (60 s) is probed every 30 s: probe_interval is the shorter.
  ASSERT_TRUE(h.advance(t0 + 30s));
  fail(h, t0 + 31s, 1);
  ASSERT_EQ(h.condition().sin_bin_until, t0 + 91s);
  EXPECT_FALSE(h.probe_due(t0 + 60s));
  EXPECT_TRUE(h.probe_due(t0 + 61s));
  EXPECT_FALSE(h.probe_due(t0 + 90s));
}

TEST(provider_health, metrics_count_the_window) {
  provider_health h{health_settings{}};
  // 101 samples with latencies 1..101 ms: 90 successes, 8 server errors, 3 rate limits.
  for (int i = 1; i <= 101; ++i) {
    auto outcome = i <= 90   ? outcome_class::success
                   : i <= 98 ? outcome_class::server_error
                             : outcome_class::rate_limited;
    h.record(report(outcome, std::chrono::milliseconds{i},
                    outcome == outcome_class::rate_limited ? 100 : -1),
             t0 + std::chrono::milliseconds{i});
  }
  auto m = h.stats(t0 + 1s);
  EXPECT_EQ(m.requests, 101u);
  EXPECT_EQ(m.errors, 8u);
  EXPECT_EQ(m.rate_limited, 3u);
  EXPECT_DOUBLE_EQ(m.error_rate, 8.0 / 101.0);
  EXPECT_DOUBLE_EQ(m.availability, 93.0 / 101.0);
  EXPECT_DOUBLE_EQ(m.latency_p50_ms, 51.0);
  EXPECT_DOUBLE_EQ(m.latency_p95_ms, 96.0);
  EXPECT_DOUBLE_EQ(m.latency_p99_ms, 100.0);
  EXPECT_EQ(m.window_s, 60);
  EXPECT_EQ(m.consecutive_failures, 8);
  // The fifth failure in a row sin-binned it (for 30 s, from t0 + 95 ms).
  EXPECT_EQ(m.state, "sin-binned");
  EXPECT_EQ(m.sin_bin_entries, 1);
}

TEST(provider_health, metrics_drop_samples_older_than_the_window) {
  provider_health h{health_settings{}};
  for (int i = 0; i < 10; ++i)
    h.record(report(outcome_class::server_error, 500ms), t0);
  for (int i = 0; i < 10; ++i)
    h.record(report(outcome_class::success, 2ms), t0 + 30s);
  auto m = h.stats(t0 + 60s);
  EXPECT_EQ(m.requests, 20u) << "exactly a window old is kept";
  m = h.stats(t0 + 61s);
  EXPECT_EQ(m.requests, 10u);
  EXPECT_EQ(m.errors, 0u);
  EXPECT_DOUBLE_EQ(m.error_rate, 0.0);
  EXPECT_DOUBLE_EQ(m.latency_p99_ms, 2.0);
  m = h.stats(t0 + 91s);
  EXPECT_EQ(m.requests, 0u);
  EXPECT_DOUBLE_EQ(m.error_rate, 0.0);
  EXPECT_DOUBLE_EQ(m.availability, 1.0);
  EXPECT_DOUBLE_EQ(m.latency_p50_ms, 0.0);
}

TEST(provider_health, metrics_report_remaining_sin_bin_and_pause) {
  provider_health h{health_settings{}};
  fail(h, t0, 5);
  h.record(report(outcome_class::rate_limited, 1ms, 4000), t0);
  auto m = h.stats(t0 + 1s);
  EXPECT_EQ(m.state, "sin-binned");
  EXPECT_EQ(m.sin_bin_remaining_ms, 29'000);
  EXPECT_EQ(m.paused_remaining_ms, 3'000);
  EXPECT_EQ(m.sin_bin_entries, 1);
}

} // namespace health_tests
} // namespace emr

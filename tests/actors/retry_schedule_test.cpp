// retry_schedule: which statuses are retried, Retry-After parsing, and the waits between attempts.

#include "actors/retry_schedule.hpp"

#include <gtest/gtest.h>

#include <ctime>

namespace emr {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// 2024-01-01T00:00:00Z
const auto epoch_2024 = std::chrono::system_clock::from_time_t(1704067200);

TEST(retry_schedule, retryable_statuses) {
  for (int s : {0, 408, 409, 429, 500, 502, 503, 504, 507, 520, 524, 529})
    EXPECT_TRUE(is_retryable(s)) << s;
  for (int s : {200, 400, 401, 402, 403, 404, 413, 422, 501, 505})
    EXPECT_FALSE(is_retryable(s)) << s;
}

TEST(retry_schedule, parses_delta_seconds) {
  EXPECT_EQ(parse_retry_after("1", "", epoch_2024), milliseconds{1000});
  EXPECT_EQ(parse_retry_after(" 2 ", "", epoch_2024), milliseconds{2000});
  EXPECT_EQ(parse_retry_after("1.5", "", epoch_2024), milliseconds{1500});
  EXPECT_EQ(parse_retry_after("0", "", epoch_2024), milliseconds{0});
}

TEST(retry_schedule, prefers_retry_after_ms) {
  EXPECT_EQ(parse_retry_after("5", "250", epoch_2024), milliseconds{250});
  EXPECT_EQ(parse_retry_after("", " 1200 ", epoch_2024), milliseconds{1200});
  EXPECT_EQ(parse_retry_after("", "0.5", epoch_2024), milliseconds{1}); // rounded up
  // A broken retry-after-ms falls back to Retry-After.
  EXPECT_EQ(parse_retry_after("3", "soon", epoch_2024), milliseconds{3000});
}

TEST(retry_schedule, parses_an_imf_fixdate_relative_to_now) {
  EXPECT_EQ(parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT", "", epoch_2024),
            milliseconds{30'000});
  EXPECT_EQ(parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT", "", epoch_2024 + 10s),
            milliseconds{20'000});
}

TEST(retry_schedule, a_past_date_means_no_wait) {
  EXPECT_EQ(parse_retry_after("Sun, 31 Dec 2023 23:59:00 GMT", "", epoch_2024), milliseconds{0});
}

TEST(retry_schedule, garbage_and_negative_values_are_ignored) {
  EXPECT_EQ(parse_retry_after("", "", epoch_2024), std::nullopt);
  EXPECT_EQ(parse_retry_after("soon", "", epoch_2024), std::nullopt);
  EXPECT_EQ(parse_retry_after("-1", "", epoch_2024), std::nullopt);
  EXPECT_EQ(parse_retry_after("", "-100", epoch_2024), std::nullopt);
  EXPECT_EQ(parse_retry_after("1s", "", epoch_2024), std::nullopt);
  EXPECT_EQ(parse_retry_after("nan", "inf", epoch_2024), std::nullopt);
  EXPECT_EQ(parse_retry_after("Mon, 32 Foo 2024 00:00:30 GMT", "", epoch_2024), std::nullopt);
}

TEST(retry_schedule, absurd_values_are_clamped_to_a_day) {
  EXPECT_EQ(parse_retry_after("1e12", "", epoch_2024), milliseconds{86'400'000});
}

// Found by fuzzing: years the clock's nanoseconds cannot hold overflowed (a far-future date
// came out as no wait at all).
TEST(retry_schedule, dates_beyond_the_clocks_range_are_clamped) {
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", "", epoch_2024),
            milliseconds{86'400'000});
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2 07:28:00 GMT", "", epoch_2024), milliseconds{0});
}

// Unless a test says otherwise, attempts take no time: the time elapsed since the first attempt
// began is what was waited so far.

TEST(retry_schedule, server_wait_is_a_floor_plus_bounded_jitter) {
  retry_settings s; // jitter 250 ms
  for (std::uint64_t seed = 0; seed < 500; ++seed) {
    retry_schedule r{s, seed};
    auto w = r.next_wait(1, milliseconds{2000}, r.waited());
    ASSERT_TRUE(w);
    EXPECT_GE(*w, milliseconds{2000}) << "seed " << seed;
    EXPECT_LE(*w, milliseconds{2250}) << "seed " << seed;
    EXPECT_EQ(r.waited(), *w);
  }
}

TEST(retry_schedule, server_wait_beyond_attempt_cap_stops) {
  retry_settings s;
  retry_schedule r{s, 1};
  EXPECT_EQ(r.next_wait(1, milliseconds{15'001}, r.waited()), std::nullopt);
  EXPECT_EQ(r.waited(), milliseconds{0});
  EXPECT_TRUE(r.next_wait(1, milliseconds{15'000}, r.waited()));
}

TEST(retry_schedule, server_wait_beyond_remaining_budget_stops) {
  retry_settings s;
  s.budget = 3000ms;
  s.jitter = 0ms;
  retry_schedule r{s, 7};
  EXPECT_EQ(r.next_wait(1, milliseconds{2000}, r.waited()), milliseconds{2000});
  EXPECT_EQ(r.next_wait(2, milliseconds{1001}, r.waited()), std::nullopt);
  EXPECT_EQ(r.next_wait(2, milliseconds{1000}, r.waited()), milliseconds{1000});
  EXPECT_EQ(r.waited(), milliseconds{3000});
}

TEST(retry_schedule, server_wait_never_shortened_by_budget_clamp) {
  retry_settings s;
  s.budget = 2100ms; // less than wait + max jitter
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    retry_schedule r{s, seed};
    auto w = r.next_wait(1, milliseconds{2000}, r.waited());
    ASSERT_TRUE(w);
    EXPECT_GE(*w, milliseconds{2000});
    EXPECT_LE(*w, milliseconds{2100});
  }
}

TEST(retry_schedule, full_jitter_without_server_wait) {
  retry_settings s; // base 500, cap 15000
  s.max_retries = 10;
  s.budget = std::chrono::hours{10};
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    retry_schedule r{s, seed};
    for (int n = 1; n <= 10; ++n) {
      auto ceiling = std::min<milliseconds>(s.attempt_cap, s.base * (1 << (n - 1)));
      auto w = r.next_wait(n, std::nullopt, r.waited());
      ASSERT_TRUE(w) << "seed " << seed << " attempt " << n;
      EXPECT_GE(*w, milliseconds{0});
      EXPECT_LE(*w, ceiling) << "seed " << seed << " attempt " << n;
    }
  }
}

TEST(retry_schedule, full_jitter_spreads_over_the_ceiling) {
  retry_settings s;
  milliseconds lo{1'000'000}, hi{0};
  for (std::uint64_t seed = 0; seed < 1000; ++seed) {
    retry_schedule r{s, seed};
    auto w = *r.next_wait(1, std::nullopt, r.waited());
    lo = std::min(lo, w);
    hi = std::max(hi, w);
  }
  EXPECT_LT(lo, milliseconds{50});
  EXPECT_GT(hi, milliseconds{450});
}

TEST(retry_schedule, stops_after_max_retries) {
  retry_settings s; // max_retries 2
  retry_schedule r{s, 3};
  EXPECT_TRUE(r.next_wait(1, std::nullopt, r.waited()));
  EXPECT_TRUE(r.next_wait(2, std::nullopt, r.waited()));
  EXPECT_EQ(r.next_wait(3, std::nullopt, r.waited()), std::nullopt);
  EXPECT_EQ(r.next_wait(3, milliseconds{10}, r.waited()), std::nullopt);
}

TEST(retry_schedule, zero_max_retries_never_retries) {
  retry_settings s;
  s.max_retries = 0;
  retry_schedule r{s, 3};
  EXPECT_EQ(r.next_wait(1, std::nullopt, r.waited()), std::nullopt);
}

TEST(retry_schedule, cumulative_budget_is_respected) {
  retry_settings s;
  s.max_retries = 50;
  s.base = 1000ms;
  s.attempt_cap = 4000ms;
  s.budget = 10'000ms;
  for (std::uint64_t seed = 0; seed < 500; ++seed) {
    retry_schedule r{s, seed};
    milliseconds total{0};
    for (int n = 1; n <= 50; ++n) {
      auto server = (n % 3 == 0) ? std::optional<milliseconds>{milliseconds{500}} : std::nullopt;
      auto w = r.next_wait(n, server, r.waited());
      if (!w)
        break;
      total += *w;
      ASSERT_LE(total, s.budget) << "seed " << seed;
    }
    EXPECT_EQ(total, r.waited());
    EXPECT_LE(r.waited(), s.budget);
  }
}

// The budget runs from the first attempt's start: time spent in attempts counts as much as waits.
TEST(retry_schedule, attempt_time_counts_against_the_budget) {
  retry_settings s; // budget 45 s, base 500 ms, jitter 250 ms
  s.max_retries = 10;
  retry_schedule r{s, 5};
  // Two 20 s attempts and nothing waited yet: 5 s are left, so a 4 s Retry-After still fits...
  auto w = r.next_wait(1, milliseconds{4000}, 40'000ms);
  ASSERT_TRUE(w);
  EXPECT_GE(*w, milliseconds{4000});
  EXPECT_LE(*w, milliseconds{4250});
  // ...but not a 5.5 s one, however little was waited.
  retry_schedule q{s, 5};
  EXPECT_EQ(q.next_wait(1, milliseconds{5500}, 40'000ms), std::nullopt);
  EXPECT_EQ(q.waited(), milliseconds{0});
}

TEST(retry_schedule, no_attempt_starts_once_the_budget_is_spent) {
  retry_settings s;
  s.max_retries = 10;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    retry_schedule r{s, seed};
    EXPECT_EQ(r.next_wait(1, std::nullopt, s.budget), std::nullopt) << seed;
    EXPECT_EQ(r.next_wait(1, std::nullopt, s.budget + 1ms), std::nullopt) << seed;
    EXPECT_EQ(r.next_wait(1, milliseconds{0}, s.budget), std::nullopt) << seed;
    // With 100 ms left, a backoff whose ceiling is 500 ms is cut to what is left, never beyond.
    auto w = r.next_wait(1, std::nullopt, s.budget - 100ms);
    ASSERT_TRUE(w) << seed;
    EXPECT_LE(*w, 100ms) << seed;
  }
}

} // namespace
} // namespace emr

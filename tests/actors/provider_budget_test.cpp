// provider_budget: where a provider's limits come from and how fast they are spent, on an
// injected clock.

#include "actors/provider_budget.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace provider_budget_tests {

using namespace std::chrono_literals;

const clock_time t0 = clock_time{} + 1000s;

// Sends as fast as the budget lets, `tokens` a call, until `until`; returns the send times.
std::vector<clock_time> send_greedily(provider_budget& b, clock_time from, clock_time until,
                                      std::uint64_t tokens = 0) {
  std::vector<clock_time> sent;
  for (auto t = from; (t = b.next_send(t)) < until;) {
    b.on_sent(t, tokens);
    sent.push_back(t);
  }
  return sent;
}

// The most calls any 60 s window holds.
std::size_t busiest_minute(const std::vector<clock_time>& sent) {
  std::size_t most = 0, first = 0;
  for (std::size_t last = 0; last < sent.size(); ++last) {
    while (sent[last] - sent[first] >= 60s)
      ++first;
    most = std::max(most, last - first + 1);
  }
  return most;
}

TEST(provider_budget, without_a_known_limit_every_call_goes_at_once_for_latency) {
  provider_budget b;
  for (int i = 0; i < 1000; ++i)
    b.on_sent(t0, 100);
  EXPECT_EQ(b.next_send(t0), t0);
  EXPECT_EQ(b.flush_threshold(t0, 128), 1u);
  EXPECT_EQ(b.requests_left(t0), -1);
  EXPECT_EQ(b.tokens_left(t0), -1);
  EXPECT_EQ(b.requests().source(), limit_source::none);
}

TEST(provider_budget, an_operator_limit_allows_a_tenth_at_once_then_paces_the_rest) {
  provider_budget b;
  b.configure(600, 0, t0);
  EXPECT_EQ(b.requests().source(), limit_source::operator_set);
  for (int i = 0; i < 60; ++i) {
    ASSERT_EQ(b.next_send(t0), t0) << "call " << i;
    b.on_sent(t0, 0);
  }
  // Refilled at nine tenths of the limit: 9 a second, one every 111.1 ms.
  EXPECT_EQ(b.next_send(t0), t0 + 111111112ns);
  EXPECT_EQ(b.requests_left(t0), 540);
}

TEST(provider_budget,
     the_flush_threshold_rises_from_one_text_to_a_full_call_as_the_budget_runs_out) {
  provider_budget b;
  b.configure(600, 0, t0);
  EXPECT_EQ(b.flush_threshold(t0, 128), 1u) << "the whole burst left: latency first";
  for (int i = 0; i < 30; ++i)
    b.on_sent(t0, 0);
  EXPECT_EQ(b.flush_threshold(t0, 128), 1u) << "half left";
  for (int i = 0; i < 15; ++i)
    b.on_sent(t0, 0);
  EXPECT_EQ(b.flush_threshold(t0, 128), 64u) << "a quarter left: calls half full";
  for (int i = 0; i < 15; ++i)
    b.on_sent(t0, 0);
  EXPECT_EQ(b.flush_threshold(t0, 128), 128u) << "none left: full calls only";
  // Refilling brings it back down.
  EXPECT_EQ(b.flush_threshold(t0 + 10s, 128), 1u);
}

TEST(provider_budget, a_greedy_sender_never_exceeds_the_limit_in_any_minute) {
  provider_budget b;
  b.configure(600, 0, t0);
  auto sent = send_greedily(b, t0, t0 + 300s);
  EXPECT_LE(busiest_minute(sent), 600u);
  // And it is not starved: nine tenths of the limit, plus the first burst.
  EXPECT_GE(sent.size(), 60u + 540u * 5 - 1);
}

TEST(provider_budget, a_token_limit_paces_calls_by_their_tokens) {
  provider_budget b;
  b.configure(0, 100'000, t0);
  // Calls of 5,000 tokens: the bucket holds 10,000, so two go at once.
  b.on_sent(b.next_send(t0), 5000);
  b.on_sent(b.next_send(t0), 5000);
  EXPECT_GT(b.next_send(t0), t0);
  EXPECT_EQ(b.tokens_left(t0), 90'000);
  auto sent = send_greedily(b, t0, t0 + 300s, 5000);
  sent.insert(sent.begin(), {t0, t0});
  EXPECT_LE(busiest_minute(sent) * 5000, 100'000u);
}

TEST(provider_budget, headers_teach_the_limit_and_what_is_left_of_it) {
  provider_budget b;
  rate_limit_headers h;
  h.limit_requests = 100;
  h.remaining_requests = 3;
  h.limit_tokens = 1'000'000;
  h.remaining_tokens = 999'000;
  b.on_headers(t0, h);
  EXPECT_EQ(b.requests().per_minute(), 100u);
  EXPECT_EQ(b.requests().source(), limit_source::headers);
  EXPECT_EQ(b.tokens().per_minute(), 1'000'000u);
  EXPECT_EQ(b.tokens().source(), limit_source::headers);
  // Someone else uses the key too: only 3 remain, though this batcher sent nothing.
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(b.next_send(t0), t0);
    b.on_sent(t0, 10);
  }
  EXPECT_GT(b.next_send(t0), t0);
}

TEST(provider_budget, a_429_teaches_the_limit_from_what_was_sent_in_the_last_minute) {
  provider_budget b;
  // 50 calls over 10 s, then the provider refuses.
  for (int i = 0; i < 50; ++i)
    b.on_sent(t0 + i * 200ms, 100);
  auto refused = t0 + 10s;
  b.on_refused(refused, std::nullopt);
  EXPECT_EQ(b.requests().per_minute(), 50u);
  EXPECT_EQ(b.requests().source(), limit_source::refusal);
  EXPECT_EQ(b.tokens().source(), limit_source::none) << "a 429 does not say it was the tokens";
  EXPECT_EQ(b.requests_left(refused), 0);
  // Nothing more until the first call of that minute leaves it.
  EXPECT_EQ(b.next_send(refused), t0 + 60s);
  // (Within the minute after the refusal: after it, the learned limit may grow.)
  auto sent = send_greedily(b, refused, refused + 60s, 100);
  for (int i = 49; i >= 0; --i)
    sent.insert(sent.begin(), t0 + i * 200ms);
  EXPECT_LE(busiest_minute(sent), 50u);
}

// A moment's overload after a minute of one-text calls: the limit the calls teach still lets a
// longer text go within seconds, where a tokens limit learned from those calls (24 a minute) held
// the next call for nine minutes after a 200-token one.
TEST(provider_budget, a_429_after_short_texts_does_not_hold_a_longer_text_for_minutes) {
  provider_budget b;
  for (int i = 0; i < 12; ++i)
    b.on_sent(t0 + i * 1s, 2);
  auto refused = t0 + 12s;
  b.on_refused(refused, 1s);
  ASSERT_EQ(b.requests().per_minute(), 12u);
  auto first = b.next_send(refused);
  EXPECT_LE(first, refused + 10s);
  b.on_sent(first, 200);
  EXPECT_LE(b.next_send(first), first + 10s);
}

TEST(provider_budget, a_second_429_lowers_a_learned_limit_but_never_raises_it) {
  provider_budget b;
  for (int i = 0; i < 50; ++i)
    b.on_sent(t0, 0);
  b.on_refused(t0, std::nullopt);
  ASSERT_EQ(b.requests().per_minute(), 50u);
  // 61 s later, 30 calls and another 429: the limit is at most 30.
  auto later = t0 + 61s;
  for (int i = 0; i < 30; ++i)
    b.on_sent(later, 0);
  b.on_refused(later, std::nullopt);
  EXPECT_EQ(b.requests().per_minute(), 30u);
}

TEST(provider_budget, a_learned_limit_grows_after_a_clean_minute_spent_near_it) {
  provider_budget b;
  for (int i = 0; i < 100; ++i)
    b.on_sent(t0, 0);
  b.on_refused(t0, std::nullopt);
  ASSERT_EQ(b.requests().per_minute(), 100u);
  // Spend it greedily for three minutes without another refusal.
  send_greedily(b, t0, t0 + 185s);
  EXPECT_GE(b.requests().per_minute(), 110u);
  EXPECT_EQ(b.requests().source(), limit_source::refusal);
}

TEST(provider_budget, the_operators_limit_wins_over_headers_and_refusals) {
  provider_budget b;
  b.configure(600, 0, t0);
  rate_limit_headers h;
  h.limit_requests = 100;
  b.on_headers(t0, h);
  EXPECT_EQ(b.requests().per_minute(), 600u);
  b.on_sent(t0, 0);
  b.on_refused(t0, std::nullopt);
  EXPECT_EQ(b.requests().per_minute(), 600u);
  EXPECT_EQ(b.requests().source(), limit_source::operator_set);
  EXPECT_GT(b.next_send(t0), t0) << "but a refusal still empties the bucket";
  // Cleared, the limit is learned again.
  b.configure(0, 0, t0);
  EXPECT_EQ(b.requests().source(), limit_source::none);
  b.on_headers(t0, h);
  EXPECT_EQ(b.requests().per_minute(), 100u);
}

TEST(provider_budget, a_429_naming_its_wait_is_believed_over_the_learned_minute) {
  provider_budget b;
  for (int i = 0; i < 50; ++i)
    b.on_sent(t0 + i * 200ms, 100);
  auto refused = t0 + 10s;
  b.on_refused(refused, 48s);
  EXPECT_EQ(b.requests().per_minute(), 50u);
  EXPECT_EQ(b.next_send(refused), refused + 48s)
      << "the provider said when: not when the learned minute frees (refused + 50 s)";
}

TEST(provider_budget, a_429_after_a_few_calls_teaches_no_limit) {
  provider_budget b;
  for (int i = 0; i < 9; ++i)
    b.on_sent(t0, 100);
  b.on_refused(t0, 1s);
  EXPECT_EQ(b.requests().source(), limit_source::none);
  EXPECT_EQ(b.next_send(t0), t0) << "the provider's pause, not the budget, holds the next call";
}

TEST(provider_budget, emptied_buckets_hold_no_burst_and_refill_at_the_limits_pace) {
  provider_budget b;
  b.configure(600, 0, t0);
  EXPECT_EQ(b.next_send(t0), t0) << "a first limit starts with its burst";
  b.empty_buckets(t0);
  // 540 a minute refill: one call's worth in 111.1 ms.
  auto next = b.next_send(t0);
  EXPECT_GT(next, t0 + 111ms);
  EXPECT_LE(next, t0 + 112ms);
}

} // namespace provider_budget_tests
} // namespace emr

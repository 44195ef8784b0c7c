// fleet_allowance: a batcher's side of the fleet's shared budget, on an injected clock.

#include "actors/fleet_allowance.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace {

using namespace std::chrono_literals;

const clock_time t0 = clock_time{} + 1000s;

budget_grant granted(std::uint64_t requests, double tokens = 0) {
  budget_grant g;
  g.requests = requests;
  g.tokens = tokens;
  g.replicas = 3;
  return g;
}

TEST(fleet_allowance, alone_or_without_a_set_limit_nothing_is_asked) {
  fleet_allowance alone;
  alone.configure(false, 600, 0);
  EXPECT_EQ(alone.sharing(), budget_sharing::alone);
  EXPECT_EQ(alone.next_send(t0), t0);
  EXPECT_FALSE(alone.ask(t0, "voyage", 3, 0, 0));
  fleet_allowance unlimited;
  unlimited.configure(true, 0, 0);
  EXPECT_EQ(unlimited.sharing(), budget_sharing::alone);
  EXPECT_FALSE(unlimited.ask(t0, "voyage", 3, 0, 0));
}

TEST(fleet_allowance, calls_go_only_on_a_grant_and_the_next_is_asked_once_it_is_spent) {
  fleet_allowance a;
  a.configure(true, 600, 0);
  EXPECT_EQ(a.sharing(), budget_sharing::fleet);
  EXPECT_FALSE(a.ask(t0, "voyage", 0, 0, 0)) << "nothing queued, nothing asked";
  auto ask = a.ask(t0, "voyage", 2, 0, 0);
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->provider, "voyage");
  EXPECT_EQ(ask->requests, 2u);
  EXPECT_EQ(ask->requests_per_minute, 600u);
  EXPECT_EQ(a.next_send(t0), clock_time::max()) << "waits for the answer, which wakes it";
  EXPECT_FALSE(a.ask(t0, "voyage", 2, 0, 0)) << "one ask at a time";
  a.on_grant(t0, granted(2));
  EXPECT_EQ(a.replicas(), 3u);
  EXPECT_EQ(a.next_send(t0), t0);
  EXPECT_FALSE(a.ask(t0, "voyage", 2, 0, 0)) << "the grant in hand covers the next call";
  a.on_sent(t0, 0);
  a.on_sent(t0 + 1ms, 0);
  EXPECT_EQ(a.requests_in_hand(t0 + 1ms), 0u);
  EXPECT_EQ(a.next_send(t0 + 1ms), clock_time::max()) << "not before the next ask is answered";
  auto next = a.ask(t0 + 1ms, "voyage", 1, 0, 0);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->requests, 1u) << "(2 calls in the last lifetime + 1) / 2 = 1";
  EXPECT_EQ(a.grants_taken(), 1u);
}

TEST(fleet_allowance, a_grant_left_unspent_expires_with_its_lifetime) {
  fleet_allowance a;
  a.configure(true, 600, 0);
  ASSERT_TRUE(a.ask(t0, "voyage", 1, 0, 0));
  a.on_grant(t0, granted(5));
  EXPECT_EQ(a.requests_in_hand(t0 + 1999ms), 5u);
  EXPECT_EQ(a.requests_in_hand(t0 + 2s), 0u);
  EXPECT_TRUE(a.ask(t0 + 2s, "voyage", 1, 0, 0));
}

TEST(fleet_allowance, an_empty_grant_says_when_to_ask_again_and_a_pause_is_kept) {
  fleet_allowance a;
  a.configure(true, 600, 0);
  ASSERT_TRUE(a.ask(t0, "voyage", 1, 0, 0));
  auto none = granted(0);
  none.ready_in_s = 0.25;
  a.on_grant(t0, none);
  EXPECT_EQ(a.next_send(t0), t0 + 250ms);
  EXPECT_FALSE(a.ask(t0 + 249ms, "voyage", 1, 0, 0));
  ASSERT_TRUE(a.ask(t0 + 250ms, "voyage", 1, 0, 0));
  auto paused = granted(0);
  paused.paused_for_s = 3;
  paused.ready_in_s = 3;
  a.on_grant(t0 + 250ms, paused);
  EXPECT_EQ(a.paused_until(), t0 + 3250ms);
}

TEST(fleet_allowance, out_of_reach_it_spends_alone_and_owes_its_spending_when_back) {
  fleet_allowance a;
  a.configure(true, 600, 0);
  ASSERT_TRUE(a.ask(t0, "voyage", 1, 0, 0));
  auto lost = granted(0);
  lost.reachable = false;
  a.on_grant(t0, lost);
  EXPECT_EQ(a.sharing(), budget_sharing::fleet_offline);
  EXPECT_EQ(a.next_send(t0), t0) << "its own share of the limit paces it now";
  EXPECT_FALSE(a.ask(t0 + 999ms, "voyage", 1, 7, 0)) << "asked again a second later";
  auto back = a.ask(t0 + 1s, "voyage", 1, 7, 0);
  ASSERT_TRUE(back);
  EXPECT_DOUBLE_EQ(back->owed_requests, 7) << "what its own bucket spent is charged";
  a.on_grant(t0 + 1s, granted(3));
  EXPECT_EQ(a.sharing(), budget_sharing::fleet);
}

TEST(fleet_allowance, calls_beyond_a_grant_retries_and_tokens_are_owed_with_the_next_ask) {
  fleet_allowance a;
  a.configure(true, 600, 10'000);
  ASSERT_TRUE(a.ask(t0, "voyage", 1, 0, 0));
  a.on_grant(t0, granted(1, 500));
  a.on_sent(t0, 800); // the call's size was known only once it was cut
  a.on_sent(t0, 800); // a retry of it
  auto next = a.ask(t0, "voyage", 1, 0, 0);
  ASSERT_TRUE(next);
  EXPECT_DOUBLE_EQ(next->owed_requests, 1);
  EXPECT_DOUBLE_EQ(next->owed_tokens, 300 + 800);
  EXPECT_DOUBLE_EQ(next->tokens, 800) << "a call's tokens, on average of late";
}

TEST(fleet_allowance, a_fleet_pause_drops_the_grant_in_hand_and_no_ask_goes_before_its_end) {
  fleet_allowance a;
  a.configure(true, 600, 0);
  ASSERT_TRUE(a.ask(t0, "voyage", 1, 0, 0));
  a.on_grant(t0, granted(5));
  a.pause(t0 + 3s);
  EXPECT_EQ(a.requests_in_hand(t0), 0u);
  EXPECT_EQ(a.paused_until(), t0 + 3s);
  EXPECT_EQ(a.next_send(t0), t0 + 3s);
  EXPECT_FALSE(a.ask(t0 + 2999ms, "voyage", 1, 0, 0));
  EXPECT_TRUE(a.ask(t0 + 3s, "voyage", 1, 0, 0));
}

TEST(fleet_allowance, a_grant_lives_from_its_ask_and_what_is_owed_meanwhile_goes_with_the_next) {
  fleet_allowance a;
  a.configure(true, 600, 0);
  ASSERT_TRUE(a.ask(t0, "voyage", 1, 0, 0));
  a.on_grant(t0, granted(1));
  a.on_sent(t0, 0);
  a.on_sent(t0, 0); // a retry beyond the grant: owed
  auto owing = a.ask(t0, "voyage", 1, 0, 0);
  ASSERT_TRUE(owing);
  EXPECT_DOUBLE_EQ(owing->owed_requests, 1);
  a.on_sent(t0 + 1ms, 0);              // another retry while the ask is pending
  a.on_grant(t0 + 1500ms, granted(3)); // a slow answer
  EXPECT_EQ(a.requests_in_hand(t0 + 1999ms), 3u);
  EXPECT_EQ(a.requests_in_hand(t0 + 2s), 0u) << "two seconds from the ask, not the answer";
  auto next = a.ask(t0 + 2s, "voyage", 1, 0, 0);
  ASSERT_TRUE(next);
  EXPECT_DOUBLE_EQ(next->owed_requests, 1) << "only what the last ask did not charge";
}

} // namespace
} // namespace emr

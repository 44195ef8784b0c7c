// The fleet's shared budget arithmetic: grants taken by replicas asking as fast as they may never
// let the fleet's calls in any minute exceed the limit, and what is owed, paused or unlimited is
// honoured.

#include "providers/shared_budget.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>

namespace emr {
namespace {

budget_ask ask_of(std::uint64_t requests, std::uint64_t rpm = 600, std::uint64_t tpm = 0,
                  double tokens = 0) {
  budget_ask a;
  a.provider = "voyage";
  a.requests_per_minute = rpm;
  a.tokens_per_minute = tpm;
  a.requests = requests;
  a.tokens = tokens;
  return a;
}

/// A new provider's row, as the ledger starts it: full.
budget_row full(std::uint64_t rpm, std::uint64_t tpm = 0) {
  return budget_row{shared_capacity(rpm), shared_capacity(tpm), 0, 0};
}

TEST(shared_budget, a_full_bucket_grants_at_most_a_fair_share_of_itself_to_each_replica) {
  auto row = full(600);
  EXPECT_EQ(shared_capacity(600), 60);
  auto g = take_grant(row, 0, ask_of(50), 3);
  EXPECT_EQ(g.requests, 20u) << "a third of the 60 a full bucket holds";
  EXPECT_TRUE(g.reachable);
  EXPECT_DOUBLE_EQ(row.requests_level, 40);
  EXPECT_DOUBLE_EQ(g.share, 40.0 / 60);
  EXPECT_EQ(take_grant(row, 0, ask_of(5), 3).requests, 5u);
  EXPECT_EQ(take_grant(row, 0, ask_of(50), 1).requests, 35u) << "what is left, alone";
  auto empty = take_grant(row, 0, ask_of(1), 1);
  EXPECT_EQ(empty.requests, 0u);
  EXPECT_NEAR(empty.ready_in_s, 1 / shared_refill_per_s(600), 1e-9)
      << "asked again once the bucket holds one call";
}

TEST(shared_budget, replicas_spending_every_grant_at_its_last_moment_stay_within_the_minute) {
  // Three replicas ask greedily every 10 ms for ten minutes; each spends a grant as late as its
  // lifetime allows, the worst case for any 60 s window at the provider.
  auto row = full(600);
  std::vector<double> spent;
  for (int step = 0; step < 60'000; ++step) {
    double now = step * 0.01;
    for (int replica = 0; replica < 3; ++replica) {
      auto g = take_grant(row, now, ask_of(100), 3);
      for (std::uint64_t i = 0; i < g.requests; ++i)
        spent.push_back(now + g.lifetime_s - 1e-6);
    }
  }
  std::sort(spent.begin(), spent.end());
  std::size_t most = 0, first = 0;
  for (std::size_t last = 0; last < spent.size(); ++last) {
    while (spent[last] - spent[first] >= 60)
      ++first;
    most = std::max(most, last - first + 1);
  }
  EXPECT_LE(most, 600u);
  // And the limit is used, not wasted: over ten minutes at least 85 % of it.
  EXPECT_GE(spent.size(), static_cast<std::size_t>(0.85 * 6000));
}

TEST(shared_budget, what_a_replica_owes_is_taken_before_it_is_granted_more) {
  auto row = full(600);
  auto a = ask_of(10);
  a.owed_requests = 55;
  EXPECT_EQ(take_grant(row, 0, a, 1).requests, 5u);
  a.owed_requests = 30;
  auto g = take_grant(row, 0, a, 1);
  EXPECT_EQ(g.requests, 0u) << "in debt: nothing until the bucket refills past it";
  EXPECT_NEAR(g.ready_in_s, 31 / shared_refill_per_s(600), 1e-9);
}

TEST(shared_budget, a_pause_after_a_refusal_grants_nothing_until_it_is_over) {
  auto row = full(600);
  row.paused_until = 12.5;
  auto g = take_grant(row, 10, ask_of(5), 2);
  EXPECT_EQ(g.requests, 0u);
  EXPECT_DOUBLE_EQ(g.paused_for_s, 2.5);
  EXPECT_DOUBLE_EQ(g.ready_in_s, 2.5);
  EXPECT_EQ(take_grant(row, 12.5, ask_of(5), 2).requests, 5u);
}

TEST(shared_budget, tokens_are_granted_with_calls_and_none_go_while_their_bucket_is_in_debt) {
  auto row = full(600, 100'000); // 10,000 tokens in a full bucket
  auto g = take_grant(row, 0, ask_of(4, 600, 100'000, 4'000), 2);
  EXPECT_EQ(g.requests, 4u);
  EXPECT_DOUBLE_EQ(g.tokens, 4'000);
  auto big = ask_of(4, 600, 100'000, 9'000);
  EXPECT_DOUBLE_EQ(take_grant(row, 0, big, 2).tokens, 5'000) << "a fair half of the bucket";
  auto owing = ask_of(1, 600, 100'000, 100);
  owing.owed_tokens = 2'000;
  auto g2 = take_grant(row, 0, owing, 2);
  EXPECT_EQ(g2.requests, 0u) << "the tokens' bucket is below zero";
  EXPECT_GT(g2.ready_in_s, 0);
}

TEST(shared_budget, an_unlimited_measure_is_never_the_reason_to_wait) {
  auto row = full(0, 0);
  auto g = take_grant(row, 0, ask_of(7, 0, 0), 3);
  EXPECT_EQ(g.requests, 7u);
  EXPECT_DOUBLE_EQ(g.share, 1);
}

} // namespace
} // namespace emr

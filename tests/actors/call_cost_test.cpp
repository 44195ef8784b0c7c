// What a call costs in time, learned from answers: the per-token slope, and into how many calls
// that makes a batch worth spreading.

#include "actors/call_cost.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace {

using namespace std::chrono_literals;

// A provider that takes 20 ms a call and 10 µs a token, as the bench's unlimited model.
std::chrono::nanoseconds modelled(std::size_t tokens) {
  return 20ms + tokens * 10us;
}

TEST(call_cost, learns_the_cost_of_a_token_from_calls_of_different_sizes) {
  call_cost cost;
  for (std::size_t tokens : {5, 50, 500, 5, 250})
    cost.on_answer(tokens, modelled(tokens));
  EXPECT_NEAR(cost.ns_per_token(), 10'000, 1);
  EXPECT_GT(cost.typical(), 20ms);
  EXPECT_LT(cost.typical(), 25ms);
}

TEST(call_cost, calls_of_one_size_teach_nothing_about_a_token) {
  call_cost cost;
  for (int i = 0; i < 10; ++i)
    cost.on_answer(100, modelled(100) + (i % 2 == 0 ? 1ms : -1ms));
  EXPECT_EQ(cost.ns_per_token(), 0);
  EXPECT_EQ(cost.calls_for(1'000, 3), 1u) << "nothing known: one call";
}

TEST(call_cost, a_slope_learned_stands_while_calls_keep_one_size) {
  call_cost cost;
  for (std::size_t tokens : {5, 500, 5, 500})
    cost.on_answer(tokens, modelled(tokens));
  ASSERT_NEAR(cost.ns_per_token(), 10'000, 1);
  for (int i = 0; i < 30; ++i)
    cost.on_answer(300, modelled(300) + (i % 2 == 0 ? 2ms : -2ms));
  EXPECT_NEAR(cost.ns_per_token(), 10'000, 500) << "not pulled about by the jitter of equal calls";
}

TEST(call_cost, a_provider_whose_calls_cost_the_same_at_any_size_is_never_spread) {
  call_cost cost;
  for (std::size_t tokens : {5, 50, 500, 5, 250})
    cost.on_answer(tokens, 20ms);
  EXPECT_NEAR(cost.ns_per_token(), 0, 1e-6);
  EXPECT_EQ(cost.calls_for(5'000, 3), 1u);
}

TEST(call_cost, each_further_call_must_save_a_twentieth_of_a_typical_call) {
  call_cost cost;
  for (std::size_t tokens : {5, 500, 5, 500, 5, 500})
    cost.on_answer(tokens, modelled(tokens));
  // A typical call here takes about 22.5 ms, so a further call must save about 1.1 ms.
  auto worth = cost.typical() / 20;
  ASSERT_GT(worth, 1ms);
  ASSERT_LT(worth, 1200us);
  EXPECT_EQ(cost.calls_for(100, 3), 1u) << "1 ms of tokens: halving saves 0.5 ms";
  EXPECT_EQ(cost.calls_for(250, 3), 2u) << "2.5 ms: two save 1.25 ms, a third 0.42 ms more";
  EXPECT_EQ(cost.calls_for(1'000, 3), 3u) << "10 ms: a third call saves 1.67 ms more";
  EXPECT_EQ(cost.calls_for(5'000, 3), 3u) << "never more than asked";
  EXPECT_EQ(cost.calls_for(5'000, 2), 2u);
  EXPECT_EQ(cost.calls_for(5'000, 1), 1u);
}

} // namespace
} // namespace emr

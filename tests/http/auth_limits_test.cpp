// auth_limits: the failure budget's token bucket on a hand-moved clock, and the argon2 slots.

#include "http/auth_limits.hpp"
#include "tests/http/manual_clock.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <thread>

namespace emr {
namespace {

using namespace std::chrono_literals;

using testing::manual_clock;

TEST(failure_budget, allows_a_burst_of_the_limit_then_names_the_wait) {
  manual_clock clock;
  failure_budget budget(3, 100, clock.function());
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(budget.take("key"), std::nullopt) << i;
  // Three taken at once: the first is earned back after a minute / 3.
  EXPECT_EQ(budget.take("key"), std::optional{20000ms});
  clock.advance(5s);
  EXPECT_EQ(budget.take("key"), std::optional{15000ms});
}

TEST(failure_budget, earns_one_attempt_back_per_interval) {
  manual_clock clock;
  failure_budget budget(3, 100, clock.function());
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(budget.take("key"), std::nullopt);
  clock.advance(20s);
  EXPECT_EQ(budget.take("key"), std::nullopt);
  EXPECT_EQ(budget.take("key"), std::optional{20000ms});
  clock.advance(60s);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(budget.take("key"), std::nullopt) << i;
  EXPECT_TRUE(budget.take("key"));
}

TEST(failure_budget, a_refusal_takes_nothing) {
  manual_clock clock;
  failure_budget budget(1, 100, clock.function());
  ASSERT_EQ(budget.take("key"), std::nullopt);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(budget.take("key"), std::optional{60000ms});
  clock.advance(60s);
  EXPECT_EQ(budget.take("key"), std::nullopt);
}

TEST(failure_budget, subjects_are_independent) {
  manual_clock clock;
  failure_budget budget(1, 100, clock.function());
  ASSERT_EQ(budget.take("a"), std::nullopt);
  EXPECT_TRUE(budget.take("a"));
  EXPECT_EQ(budget.take("b"), std::nullopt);
  EXPECT_EQ(budget.size(), 2u);
}

TEST(failure_budget, give_back_returns_what_take_took) {
  manual_clock clock;
  failure_budget budget(2, 100, clock.function());
  ASSERT_EQ(budget.take("key"), std::nullopt);
  ASSERT_EQ(budget.take("key"), std::nullopt);
  budget.give_back("key");
  EXPECT_EQ(budget.take("key"), std::nullopt);
  EXPECT_TRUE(budget.take("key"));
  budget.give_back("key");
  budget.give_back("key");
  EXPECT_EQ(budget.size(), 0u) << "back at a full budget: nothing to remember";
  budget.give_back("never-charged");
  EXPECT_EQ(budget.size(), 0u);
}

TEST(failure_budget, forgets_subjects_back_at_a_full_budget) {
  manual_clock clock;
  failure_budget budget(60, 100, clock.function());
  ASSERT_EQ(budget.take("a"), std::nullopt);
  ASSERT_EQ(budget.take("b"), std::nullopt);
  EXPECT_EQ(budget.size(), 2u);
  clock.advance(1s);
  ASSERT_EQ(budget.take("c"), std::nullopt);
  EXPECT_EQ(budget.size(), 1u);
}

TEST(failure_budget, beyond_capacity_the_subject_charged_longest_ago_goes) {
  manual_clock clock;
  failure_budget budget(1, 2, clock.function());
  ASSERT_EQ(budget.take("a"), std::nullopt);
  ASSERT_EQ(budget.take("b"), std::nullopt);
  ASSERT_EQ(budget.take("c"), std::nullopt);
  EXPECT_EQ(budget.size(), 2u);
  EXPECT_EQ(budget.take("a"), std::nullopt) << "a was pushed out, so it starts afresh";
  EXPECT_TRUE(budget.take("c"));
}

TEST(failure_budget, zero_capacity_never_refuses) {
  manual_clock clock;
  failure_budget budget(1, 0, clock.function());
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(budget.take("a"), std::nullopt);
  EXPECT_EQ(budget.size(), 0u);
}

TEST(verification_slots, refuse_beyond_the_limit_until_one_is_released) {
  verification_slots slots(2);
  EXPECT_TRUE(slots.acquire(0ms));
  EXPECT_TRUE(slots.acquire(0ms));
  EXPECT_FALSE(slots.acquire(0ms));
  EXPECT_FALSE(slots.acquire(1ms));
  slots.release();
  EXPECT_TRUE(slots.acquire(0ms));
}

TEST(concurrent_verifications, zero_means_half_the_cores_and_at_least_one) {
  auth_limits limits;
  limits.max_concurrent_verifications = 3;
  EXPECT_EQ(concurrent_verifications(limits), 3u);
  limits.max_concurrent_verifications = 0;
  EXPECT_EQ(concurrent_verifications(limits),
            std::max(1u, std::thread::hardware_concurrency() / 2));
  EXPECT_GE(concurrent_verifications(limits), 1u);
}

} // namespace
} // namespace emr

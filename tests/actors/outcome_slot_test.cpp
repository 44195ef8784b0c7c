// outcome_slot: the hand-off of a caller's outcome from its request actor to its HTTP thread.

#include "actors/outcome_slot.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace emr {
namespace {

using namespace std::chrono_literals;

TEST(outcome_slot, nothing_is_taken_before_an_outcome_is_left) {
  outcome_slot<std::string> slot;
  EXPECT_EQ(slot.take(0s), std::nullopt);
}

TEST(outcome_slot, the_first_outcome_left_is_taken_once) {
  outcome_slot<std::string> slot;
  slot.set("served");
  slot.set("shutting down");
  EXPECT_EQ(slot.take(0s), "served") << "a caller is answered once, by the first outcome";
  EXPECT_EQ(slot.take(0s), std::nullopt) << "taken, it is gone";
}

TEST(outcome_slot, a_thread_waiting_for_the_outcome_wakes_with_it) {
  outcome_slot<std::string> slot;
  std::optional<std::string> taken;
  // The hour is only a bound for a broken slot: the outcome wakes the waiter, however late the
  // scheduler lets either thread run.
  std::thread waiter{[&] { taken = slot.take(1h); }};
  slot.set("served");
  waiter.join();
  EXPECT_EQ(taken, "served");
}

TEST(outcome_slot, a_continuation_left_first_runs_on_the_thread_that_leaves_the_outcome) {
  outcome_slot<std::string> slot;
  std::vector<std::pair<std::string, std::thread::id>> ran;
  slot.then([&](std::string outcome) { ran.emplace_back(outcome, std::this_thread::get_id()); });
  EXPECT_TRUE(ran.empty()) << "nothing to run it with yet";
  std::thread::id setter;
  std::thread actor{[&] {
    setter = std::this_thread::get_id();
    slot.set("served");
    slot.set("shutting down");
  }};
  actor.join();
  ASSERT_EQ(ran.size(), 1u) << "a caller is answered once, by the first outcome";
  EXPECT_EQ(ran[0].first, "served");
  EXPECT_EQ(ran[0].second, setter);
}

TEST(outcome_slot, a_continuation_left_after_the_outcome_runs_at_once_where_it_is_left) {
  outcome_slot<std::string> slot;
  slot.set("served from the cache");
  std::vector<std::string> ran;
  slot.then([&](std::string outcome) { ran.push_back(std::move(outcome)); });
  EXPECT_EQ(ran, std::vector<std::string>{"served from the cache"});
  slot.set("shutting down");
  EXPECT_EQ(ran.size(), 1u);
}

} // namespace
} // namespace emr

// arrivals: the count of requests still being read, which batchers hold partial batches for.

#include "actors/arrivals.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace emr {
namespace {

TEST(arrivals, a_request_counts_until_it_leaves_and_leaves_once) {
  arrivals all;
  {
    arrivals::entry request{all};
    EXPECT_EQ(all.under_way(), 1u);
    arrivals::leave_current();
    EXPECT_EQ(all.under_way(), 0u);
    arrivals::leave_current();
    EXPECT_EQ(all.under_way(), 0u) << "a second leave takes nothing off";
  }
  EXPECT_EQ(all.under_way(), 0u) << "its end after leaving takes nothing off either";
}

TEST(arrivals, a_request_that_never_left_stops_counting_when_it_ends) {
  arrivals all;
  {
    arrivals::entry request{all};
    EXPECT_EQ(all.under_way(), 1u);
  }
  EXPECT_EQ(all.under_way(), 0u);
  arrivals::leave_current();
  EXPECT_EQ(all.under_way(), 0u) << "with no request on the thread, leaving is harmless";
}

TEST(arrivals, a_thread_ends_only_its_own_request) {
  arrivals all;
  arrivals::entry mine{all};
  std::thread other([&] {
    arrivals::entry theirs{all};
    EXPECT_EQ(all.under_way(), 2u);
    arrivals::leave_current();
    EXPECT_EQ(all.under_way(), 1u);
  });
  other.join();
  EXPECT_EQ(all.under_way(), 1u);
  arrivals::leave_current();
  EXPECT_EQ(all.under_way(), 0u);
}

TEST(arrivals, a_request_no_thread_has_taken_counts_until_its_last_handle_is_gone) {
  auto all = std::make_shared<arrivals>();
  auto waiting = all->arrive();
  EXPECT_EQ(all->under_way(), 1u);
  auto copy = waiting; // as the job that carries it to an HTTP thread is copied
  waiting.reset();
  EXPECT_EQ(all->under_way(), 1u);
  copy.reset();
  EXPECT_EQ(all->under_way(), 0u);
}

} // namespace
} // namespace emr

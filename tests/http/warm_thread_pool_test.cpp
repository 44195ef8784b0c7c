// warm_thread_pool: every job runs, shutdown runs what is queued first, and connections that come
// one at a time keep landing on the same few warm threads.

#include "http/warm_thread_pool.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <future>
#include <set>

namespace emr {
namespace {

TEST(warm_thread_pool, runs_every_job_and_shutdown_runs_the_queued_ones_first) {
  std::atomic<int> ran{0};
  warm_thread_pool pool{4};
  std::promise<void> release;
  auto gate = release.get_future().share();
  for (int i = 0; i < 4; ++i)
    pool.enqueue([gate, &ran] {
      gate.wait();
      ++ran;
    });
  for (int i = 0; i < 100; ++i)
    pool.enqueue([&ran] { ++ran; });
  release.set_value();
  pool.shutdown();
  EXPECT_EQ(ran.load(), 104);
}

TEST(warm_thread_pool, jobs_run_as_batch_threads_that_never_preempt_the_gate_or_actors) {
  warm_thread_pool pool{2};
  std::promise<int> policy;
  auto seen = policy.get_future();
  pool.enqueue([&policy] { policy.set_value(sched_getscheduler(0)); });
  EXPECT_EQ(seen.get(), SCHED_BATCH);
}

TEST(warm_thread_pool, jobs_one_at_a_time_stay_on_a_few_warm_threads) {
  constexpr std::size_t threads = 256;
  warm_thread_pool pool{threads};
  // Each job comes once the one before has left its thread idle again, as connections one at a
  // time do, so the thread that takes it is decided by the pool alone, not by timing.
  auto all_idle = [&] {
    while (pool.idle_threads() < threads)
      std::this_thread::yield();
  };
  std::set<std::thread::id> used;
  for (int i = 0; i < 200; ++i) {
    all_idle();
    std::promise<std::thread::id> ran_on;
    auto id = ran_on.get_future();
    pool.enqueue([&ran_on] { ran_on.set_value(std::this_thread::get_id()); });
    used.insert(id.get());
  }
  // A pool that takes its idle threads in turn would have used 200 of them.
  EXPECT_EQ(used.size(), 1u) << "the most recently idle thread, every time";
}

} // namespace
} // namespace emr

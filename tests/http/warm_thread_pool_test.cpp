// warm_thread_pool: every job runs, shutdown runs what is queued first, connections that come
// one at a time keep landing on the same few warm threads, only so many jobs run at once, and a
// thread that waits, marked or not, holds up no queued job.

#include "http/warm_thread_pool.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <vector>

namespace emr {
namespace {

TEST(warm_thread_pool, runs_every_job_and_shutdown_runs_the_queued_ones_first) {
  std::atomic<int> ran{0};
  warm_thread_pool pool{4, 4};
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

TEST(warm_thread_pool, each_thread_starts_alone_and_before_its_first_job) {
  constexpr int threads = 16;
  std::atomic<int> started{0}, inside{0}, most_inside{0};
  std::mutex ids_mutex;
  std::set<std::thread::id> started_on;
  {
    warm_thread_pool pool{threads, threads, [&] {
                            most_inside = std::max(most_inside.load(), ++inside);
                            {
                              std::lock_guard lock(ids_mutex);
                              started_on.insert(std::this_thread::get_id());
                            }
                            ++started;
                            --inside;
                          }};
    // Held, the jobs take every thread, and each ran its start before it could take one.
    std::promise<void> release;
    auto gate = release.get_future().share();
    std::atomic<int> waiting{0};
    std::vector<std::thread::id> ran_on(threads);
    for (int i = 0; i < threads; ++i)
      pool.enqueue([&, i, gate] {
        ran_on[i] = std::this_thread::get_id();
        ++waiting;
        gate.wait();
      });
    while (waiting.load() < threads)
      std::this_thread::yield();
    {
      std::lock_guard lock(ids_mutex);
      for (auto id : ran_on)
        EXPECT_EQ(started_on.count(id), 1u) << "a job ran on a thread that had not started";
    }
    release.set_value();
  }
  EXPECT_EQ(started.load(), threads);
  EXPECT_EQ(most_inside.load(), 1) << "one thread at a time";
}

TEST(warm_thread_pool, jobs_run_as_batch_threads_that_never_preempt_the_gate_or_actors) {
  warm_thread_pool pool{2, 2};
  std::promise<int> policy;
  auto seen = policy.get_future();
  pool.enqueue([&policy] { policy.set_value(sched_getscheduler(0)); });
  EXPECT_EQ(seen.get(), SCHED_BATCH);
}

TEST(warm_thread_pool, jobs_one_at_a_time_stay_on_a_few_warm_threads) {
  constexpr std::size_t threads = 256;
  warm_thread_pool pool{threads, 4};
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

// Long enough that no sentry steps in while a test looks.
constexpr auto never = std::chrono::hours{1};

TEST(warm_thread_pool, runs_so_many_jobs_at_once_and_the_rest_as_threads_come_free) {
  warm_thread_pool pool{16, 2, {}, never};
  std::promise<void> release;
  auto gate = release.get_future().share();
  std::atomic<int> started{0}, inside{0}, most_inside{0}, ran{0};
  for (int i = 0; i < 10; ++i)
    pool.enqueue([&, gate] {
      ++started;
      int now_inside = ++inside;
      for (int most = most_inside.load(); now_inside > most;)
        most_inside.compare_exchange_weak(most, now_inside);
      gate.wait();
      --inside;
      ++ran;
    });
  while (started.load() < 2)
    std::this_thread::yield();
  // Decided as each job came: two went to threads, eight wait for one of them.
  EXPECT_EQ(pool.queued_jobs(), 8u);
  EXPECT_EQ(started.load(), 2);
  release.set_value();
  // Before shutdown, which runs what is queued on every thread it wakes.
  while (ran.load() < 10)
    std::this_thread::yield();
  EXPECT_EQ(most_inside.load(), 2);
}

TEST(warm_thread_pool, a_thread_that_says_it_waits_lends_its_place_to_a_queued_job) {
  warm_thread_pool pool{8, 1, {}, never};
  std::promise<void> second_ran;
  auto second = second_ran.get_future();
  std::promise<bool> first_saw;
  auto seen = first_saw.get_future();
  pool.enqueue([&] {
    waiting_scope waiting;
    first_saw.set_value(second.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  });
  pool.enqueue([&] { second_ran.set_value(); });
  EXPECT_TRUE(seen.get()) << "the queued job ran only once the waiting one had given up";
}

TEST(warm_thread_pool, a_wait_nobody_marked_holds_queued_jobs_only_until_the_sentry_sees_it) {
  warm_thread_pool pool{8, 1, {}, std::chrono::milliseconds{2}};
  std::promise<void> second_ran;
  auto second = second_ran.get_future();
  std::promise<bool> first_saw;
  auto seen = first_saw.get_future();
  pool.enqueue([&] {
    first_saw.set_value(second.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  });
  pool.enqueue([&] { second_ran.set_value(); });
  EXPECT_TRUE(seen.get()) << "the queued job ran only once the waiting one had given up";
  EXPECT_EQ(pool.queued_jobs(), 0u);
}

} // namespace
} // namespace emr

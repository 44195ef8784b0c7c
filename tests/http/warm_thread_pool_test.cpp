// warm_thread_pool: every job runs, shutdown runs what is queued first, and connections that come
// one at a time keep landing on the same few warm threads.

#include "http/warm_thread_pool.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <vector>

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

TEST(warm_thread_pool, each_thread_starts_alone_and_before_its_first_job) {
  constexpr int threads = 16;
  std::atomic<int> started{0}, inside{0}, most_inside{0};
  std::mutex ids_mutex;
  std::set<std::thread::id> started_on;
  {
    warm_thread_pool pool{threads, [&] {
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

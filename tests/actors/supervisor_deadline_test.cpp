// The retry supervisor against a worker that answers only when told, on CAF's deterministic test
// scheduler: no attempt after every caller stopped waiting (callers who joined the call count),
// none behind a worker still blocked.

#include "actors/supervisor.hpp"
#include "tests/actors/actor_fakes.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace {

using namespace std::chrono_literals;
using testing::fake_batcher_impl;
using testing::fake_worker_impl;

struct supervisor_deadline : ::testing::Test, testing::test_system {
  upstream_actor worker;
  batcher_actor batcher;
  health_actor health;
  supervisor_actor supervisor;

  void SetUp() override {
    start_test_system();
    worker = caf::actor_cast<upstream_actor>(sys->spawn(testing::fake_worker, 0));
    batcher = caf::actor_cast<batcher_actor>(sys->spawn(testing::fake_batcher, 0));
    health = sys->spawn(testing::mock_health, health_stats{});
  }

  void TearDown() override {
    for (const auto& h :
         {caf::actor_cast<caf::actor>(worker), caf::actor_cast<caf::actor>(batcher),
          caf::actor_cast<caf::actor>(health), caf::actor_cast<caf::actor>(supervisor)})
      if (h)
        caf::anon_send_exit(h, caf::exit_reason::kill);
    sched->run();
    worker = nullptr;
    batcher = nullptr;
    health = nullptr;
    supervisor = nullptr;
    sys.reset();
  }

  void start(clock_time callers_wait_until) {
    supervisor_job job;
    job.batch_id = 7;
    job.provider = "p";
    job.call = upstream_call{"{}", 1, "req"};
    job.worker = worker;
    job.batcher = batcher;
    job.health = health;
    job.attempt_timeout = 1s;
    job.callers_wait_until = callers_wait_until;
    job.seed = 1;
    supervisor = sys->spawn(retry_supervisor, std::move(job));
    sched->run();
  }

  testing::fake_worker_state& worker_st() { return testing::state_of<fake_worker_impl>(worker); }
  std::vector<batch_outcome>& outcomes() {
    return testing::state_of<fake_batcher_impl>(batcher).outcomes;
  }
  void advance(caf::timespan d) {
    sched->advance_time(d);
    sched->run();
  }

  // A 429 that asks for half a second: the retry would start 500 to 750 ms from now.
  void answer_rate_limited() {
    upstream_reply reply;
    reply.status = 429;
    reply.retry_after_ms = "500";
    caf::anon_send(caf::actor_cast<caf::actor>(worker), testing::release_atom::value, reply);
    sched->run();
  }
};

TEST_F(supervisor_deadline,
       a_retry_that_would_start_after_every_caller_stopped_waiting_is_not_made) {
  start(sched->clock().now() + 400ms);
  ASSERT_EQ(worker_st().calls.size(), 1u);
  answer_rate_limited();
  ASSERT_EQ(outcomes().size(), 1u) << "settled at once: the callers still waiting can go elsewhere";
  ASSERT_TRUE(outcomes()[0].error);
  EXPECT_EQ(outcomes()[0].error->status, 429);
  EXPECT_EQ(outcomes()[0].error->retry_after_ms, 500);
  EXPECT_EQ(outcomes()[0].attempts, 1);
  advance(10s);
  EXPECT_EQ(worker_st().calls.size(), 1u);
}

TEST_F(supervisor_deadline, a_retry_within_the_callers_wait_is_made) {
  start(sched->clock().now() + 2s);
  answer_rate_limited();
  EXPECT_TRUE(outcomes().empty());
  advance(750ms);
  EXPECT_EQ(worker_st().calls.size(), 2u);
}

TEST_F(supervisor_deadline,
       a_caller_that_joins_later_extends_the_wait_and_an_earlier_one_does_not_cut_it) {
  auto now = sched->clock().now();
  start(now + 400ms);
  auto wait_until = [&](clock_time t) {
    caf::anon_send(supervisor, atom::wait_until::value, t);
    sched->run();
  };
  wait_until(now + 2s);
  wait_until(now + 100ms);
  answer_rate_limited();
  EXPECT_TRUE(outcomes().empty()) << "the caller that joined still waits: the retry is made for it";
  advance(750ms);
  EXPECT_EQ(worker_st().calls.size(), 2u);
}

TEST_F(supervisor_deadline,
       an_attempt_past_the_backstop_ends_the_batch_and_leaves_its_worker_blocked) {
  start(clock_time::max());
  advance(999ms);
  EXPECT_TRUE(outcomes().empty());
  advance(1ms);
  ASSERT_EQ(outcomes().size(), 1u);
  EXPECT_TRUE(outcomes()[0].worker_blocked);
  ASSERT_TRUE(outcomes()[0].error);
  EXPECT_EQ(outcomes()[0].error->status, 502);
  EXPECT_TRUE(outcomes()[0].congestion);
  advance(60s);
  EXPECT_EQ(worker_st().calls.size(), 1u)
      << "nothing queued behind the call the worker is stuck in";
}

} // namespace
} // namespace emr

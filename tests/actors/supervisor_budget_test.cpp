// The retry supervisor on CAF's deterministic test scheduler: the retry budget runs from the first
// attempt's start, so slow attempts use it up as much as waits do.

#include "actors/supervisor.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

namespace emr {
namespace {

using namespace std::chrono_literals;

// Stand-ins for the batcher, the health actor and the upstream worker, untyped so that each
// handles only what a supervisor sends it. The worker holds every call until told to fail it.
struct stand_ins {
  std::vector<caf::response_promise> calls;
  std::vector<batch_outcome> settled;
  int reports = 0;
};

caf::behavior worker(caf::event_based_actor* self, std::shared_ptr<stand_ins> s) {
  return {
      [self, s](atom::call, const upstream_call&) {
        s->calls.push_back(self->make_response_promise());
        return s->calls.back();
      },
      [s](atom::flush) {
        upstream_reply failed;
        failed.status = 500;
        failed.error_message = "down";
        for (auto& call : s->calls)
          if (call.pending())
            call.deliver(failed);
      },
  };
}

caf::behavior batcher_and_health(caf::event_based_actor*, std::shared_ptr<stand_ins> s) {
  return {
      [s](atom::done, const batch_outcome& outcome) { s->settled.push_back(outcome); },
      [s](atom::report, const call_report&) { ++s->reports; },
  };
}

struct supervisor_budget : ::testing::Test {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<stand_ins> s = std::make_shared<stand_ins>();
  caf::actor upstream;
  caf::actor sink;

  void SetUp() override {
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    upstream = sys->spawn(worker, s);
    sink = sys->spawn(batcher_and_health, s);
  }

  void TearDown() override {
    caf::anon_send_exit(upstream, caf::exit_reason::kill);
    caf::anon_send_exit(sink, caf::exit_reason::kill);
    sched->run();
    s->calls.clear();
    sys.reset();
  }

  // Runs one batch whose every attempt takes `attempt_time` and fails with a 500; returns how
  // many attempts it made.
  int attempts_when_each_takes(caf::timespan attempt_time, retry_settings retry) {
    supervisor_job job;
    job.batch_id = 7;
    job.provider = "slow";
    job.worker = caf::actor_cast<upstream_actor>(upstream);
    job.batcher = caf::actor_cast<batcher_actor>(sink);
    job.health = caf::actor_cast<health_actor>(sink);
    job.retry = retry;
    job.attempt_timeout = 10min; // the worker's own timeouts are not what is tested here
    job.seed = 42;
    sys->spawn(retry_supervisor, std::move(job));
    sched->run();
    for (int attempt = 1; attempt <= 20; ++attempt) {
      EXPECT_EQ(s->calls.size(), static_cast<std::size_t>(attempt));
      sched->advance_time(attempt_time);
      caf::anon_send(upstream, atom::flush::value);
      sched->run();
      if (!s->settled.empty())
        return attempt;
      // Every wait is at most attempt_cap: this fires the retry.
      sched->advance_time(retry.attempt_cap);
      sched->run();
    }
    return -1;
  }
};

TEST_F(supervisor_budget, slow_attempts_use_up_the_budget) {
  retry_settings retry; // budget 45 s
  retry.max_retries = 5;
  retry.attempt_cap = 1s;
  // Attempts end at 20 s, at most 41 s and at most 62 s: the third starts within the budget (at
  // most 42 s in), the fourth would start past it. Counting waits alone, all six would be made.
  EXPECT_EQ(attempts_when_each_takes(20s, retry), 3);
  ASSERT_EQ(s->settled.size(), 1u);
  EXPECT_EQ(s->settled.front().attempts, 3);
  ASSERT_TRUE(s->settled.front().error);
  EXPECT_EQ(s->settled.front().error->status, 502);
  EXPECT_EQ(s->reports, 3);
}

TEST_F(supervisor_budget, quick_attempts_retry_as_often_as_allowed) {
  retry_settings retry;
  retry.max_retries = 5;
  retry.attempt_cap = 1s;
  EXPECT_EQ(attempts_when_each_takes(100ms, retry), 6);
}

} // namespace
} // namespace emr

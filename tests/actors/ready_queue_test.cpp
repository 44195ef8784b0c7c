// ready_queue: CAF's workers on emr's scheduling policy, under the hand-offs emr makes (actors
// spawned from many outside threads, chains of actors made ready by one another, an idle system
// woken from outside). Nothing here is timed: an actor left unscheduled shows as a request that
// never returns, which the requests' generous timeouts turn into a failure instead of a hang.

#include "actors/ready_queue.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/coordinator.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace emr {
namespace {

using namespace std::chrono_literals;

struct ready_queue_system : ::testing::Test {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  void SetUp() override {
    cfg.set("scheduler.max-threads", 4);
    cfg.load<caf::scheduler::coordinator<ready_queue>>();
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

// (With an argument: CAF 0.17 spawns an actor function without one through a null
// std::tuple<> pointer, which UBSan reports.)
caf::behavior adder(caf::event_based_actor*, int step) {
  return {[step](int x) { return x + step; }};
}

// Adds one and hands the request on to the next actor, which answers the requester.
caf::behavior relay(caf::event_based_actor* self, caf::actor next) {
  return {[self, next](int x) { return self->delegate(next, x + 1); }};
}

// Asks `to` with `x` and returns its answer, or -1 if none came within a minute.
int ask(caf::actor_system& sys, const caf::actor& to, int x) {
  caf::scoped_actor self{sys};
  int answer = -1;
  self->request(to, 60s, x).receive([&](int n) { answer = n; }, [](caf::error&) {});
  return answer;
}

TEST_F(ready_queue_system, actors_spawned_from_many_outside_threads_all_run) {
  EXPECT_EQ(sys->scheduler().num_workers(), 4u);
  constexpr int threads = 8, actors_each = 100;
  std::atomic<int> answered{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t)
    callers.emplace_back([&, t] {
      for (int i = 0; i < actors_each; ++i)
        if (ask(*sys, sys->spawn(adder, 1), t * 1000 + i) == t * 1000 + i + 1)
          ++answered;
    });
  for (auto& c : callers)
    c.join();
  EXPECT_EQ(answered.load(), threads * actors_each);
}

TEST_F(ready_queue_system, actors_made_ready_by_one_another_all_run) {
  // Each relay makes the next one ready from a worker, which takes it when it next looks.
  constexpr int length = 2000;
  auto next = sys->spawn(adder, 1);
  for (int i = 1; i < length; ++i)
    next = sys->spawn(relay, next);
  EXPECT_EQ(ask(*sys, next, 0), length);
}

TEST_F(ready_queue_system, an_idle_system_is_woken_from_outside) {
  auto a = sys->spawn(adder, 1);
  EXPECT_EQ(ask(*sys, a, 1), 2);
  // Every worker has nothing to do and sleeps once the first answer is in; each later request
  // must wake one.
  for (int i = 0; i < 50; ++i)
    ASSERT_EQ(ask(*sys, a, i), i + 1) << "request " << i;
}

} // namespace
} // namespace emr

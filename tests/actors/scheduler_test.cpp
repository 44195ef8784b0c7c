// emr's CAF scheduler on a real actor system. Its workers (ready_queue) under the hand-offs emr
// makes: actors spawned from many outside threads, chains of actors made ready by one another, an
// idle system woken from outside. Its clock (timer_clock): delayed messages in due order, request
// timeouts, a sooner timer waking a clock asleep for a later one. Nothing asserts a duration: an
// actor left unscheduled or a timer never fired shows as an answer that never comes, which a
// generous timeout turns into a failure instead of a hang.

#include "actors/scheduler.hpp"

#include <caf/all.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace emr {
namespace {

using namespace std::chrono_literals;

struct scheduler_system : ::testing::Test {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  void SetUp() override {
    cfg.set("scheduler.max-threads", 4);
    cfg.load<scheduler>();
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

TEST_F(scheduler_system, actors_spawned_from_many_outside_threads_all_run) {
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

TEST_F(scheduler_system, actors_made_ready_by_one_another_all_run) {
  // Each relay makes the next one ready from a worker, which takes it when it next looks.
  constexpr int length = 2000;
  auto next = sys->spawn(adder, 1);
  for (int i = 1; i < length; ++i)
    next = sys->spawn(relay, next);
  EXPECT_EQ(ask(*sys, next, 0), length);
}

TEST_F(scheduler_system, an_idle_system_is_woken_from_outside) {
  auto a = sys->spawn(adder, 1);
  EXPECT_EQ(ask(*sys, a, 1), 2);
  // Every worker has nothing to do and sleeps once the first answer is in; each later request
  // must wake one.
  for (int i = 0; i < 50; ++i)
    ASSERT_EQ(ask(*sys, a, i), i + 1) << "request " << i;
}

// Never answers: its callers' requests can only time out.
caf::behavior silent(caf::event_based_actor* self, int) {
  return {[self](int) { return self->make_response_promise<int>(); }};
}

TEST_F(scheduler_system, delayed_messages_arrive_in_the_order_they_fall_due) {
  caf::scoped_actor self{*sys};
  self->delayed_send(self, 60ms, 3);
  self->delayed_send(self, 20ms, 1);
  self->delayed_send(self, 40ms, 2);
  std::vector<int> arrived;
  for (int i = 0; i < 3; ++i)
    self->receive([&](int n) { arrived.push_back(n); }, caf::after(60s) >> [&] { FAIL(); });
  EXPECT_EQ(arrived, (std::vector<int>{1, 2, 3}));
}

TEST_F(scheduler_system, a_request_nobody_answers_times_out) {
  caf::scoped_actor self{*sys};
  auto quiet = sys->spawn(silent, 0);
  caf::error got;
  self->request(quiet, 20ms, 1)
      .receive([](int) { FAIL() << "answered"; }, [&](caf::error& e) { got = e; });
  EXPECT_EQ(got, caf::sec::request_timeout);
  caf::anon_send_exit(quiet, caf::exit_reason::kill);
}

TEST_F(scheduler_system, a_timer_due_sooner_wakes_a_clock_asleep_for_a_later_one) {
  caf::scoped_actor self{*sys};
  self->delayed_send(self, 1h, 2);
  // Let the clock go to sleep until the hour is up.
  auto a = sys->spawn(adder, 1);
  ASSERT_EQ(ask(*sys, a, 1), 2);
  self->delayed_send(self, 10ms, 1);
  int got = 0;
  self->receive([&](int n) { got = n; }, caf::after(30s) >> [&] { FAIL() << "never woken"; });
  EXPECT_EQ(got, 1);
}

// Sets itself a timer an hour away.
caf::behavior ticking(caf::event_based_actor* self, int) {
  self->delayed_send(self, 1h, 1);
  return {[](int) {}};
}

TEST_F(scheduler_system, shutting_down_drops_the_timers_still_set) {
  // The delayed message holds its detached receiver, and the actor system waits at shutdown for
  // every detached actor's last reference to go: the clock must let go, not wait out the hour.
  auto ticker = sys->spawn<caf::detached>(ticking, 0);
  caf::anon_send_exit(ticker, caf::exit_reason::user_shutdown);
  ticker = nullptr;
  auto started = std::chrono::steady_clock::now();
  sys.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 60s);
}

} // namespace
} // namespace emr

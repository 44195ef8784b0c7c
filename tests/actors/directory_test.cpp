// Supervision on CAF's deterministic test scheduler: a batcher or the health actor that dies is
// restarted by the provider directory, the callers a batcher held are answered at once, and one
// that keeps dying is left failed past the restart limit. The upstream never answers (a listener
// that accepts nothing), so calls stay in flight until the test settles them as a supervisor would.

#include "actors/directory.hpp"
#include "tests/actors/batcher_client.hpp"
#include "tools/fake_vectors.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

namespace emr {
namespace {

using namespace std::chrono_literals;

using testing::black_hole;
using testing::client_answer;
using testing::matrix_of;

using batcher_impl = caf::stateful_actor<batcher_state, batcher_actor::base>;

struct supervision : ::testing::Test {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  black_hole upstream;
  provider_spec spec;
  std::unique_ptr<provider_directory> directory;
  std::vector<caf::actor> clients;
  std::vector<batcher_actor> batchers;      ///< every batcher seen, to stop them at the end
  std::vector<caf::actor_addr> supervisors; ///< of every call seen, settled by hand or not
  const batch_key key{"voyage-3.5", "", 0};

  void SetUp() override {
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    spec.name = "voy";
    spec.type = provider_type::voyage;
    spec.endpoint = "http://127.0.0.1:" + std::to_string(upstream.port) + "/v1/embeddings";
    spec.model = "voyage-3.5";
    spec.api_key_env = "EMR_TEST_NO_SUCH_KEY";
    spec.max_batch = 4;
  }

  void start(restart_settings restarts = {}) {
    batcher_settings settings;
    settings.flush.coalesce = 0ns; // a lone chunk goes at once
    // One call at a time: a second caller's chunk waits in the queue.
    settings.flush.initial_concurrency = 1;
    settings.flush.max_concurrency = 1;
    settings.upstream.connect_timeout = 1s;
    settings.upstream.read_timeout = 3s;
    directory = std::make_unique<provider_directory>(*sys, settings, health_settings{}, restarts);
    directory->start(spec);
    sched->run();
  }

  void TearDown() override {
    for (const auto& s : supervisors)
      if (auto hdl = caf::actor_cast<caf::actor>(s))
        caf::anon_send_exit(hdl, caf::exit_reason::kill);
    for (const auto& c : clients)
      caf::anon_send_exit(c, caf::exit_reason::kill);
    sched->run();
    // Gone first, so that the kills below are not taken for crashes.
    directory.reset();
    upstream.close();
    for (const auto& b : batchers)
      caf::anon_send_exit(b, caf::exit_reason::kill);
    sched->run();
    batchers.clear();
    clients.clear();
    sys.reset();
  }

  batcher_actor current() {
    auto route = directory->route("voy");
    EXPECT_TRUE(route);
    if (!route)
      return {};
    if (std::find(batchers.begin(), batchers.end(), route->batcher) == batchers.end())
      batchers.push_back(route->batcher);
    return route->batcher;
  }
  batcher_state& st(const batcher_actor& b) {
    return dynamic_cast<batcher_impl&>(*caf::actor_cast<caf::abstract_actor*>(b)).state;
  }
  static bool alive(const caf::actor_addr& a) {
    auto ptr = caf::actor_cast<caf::strong_actor_ptr>(a);
    return ptr && !ptr->get()->getf(caf::abstract_actor::is_terminated_flag);
  }
  static bool alive(const batcher_actor& b) { return alive(b.address()); }

  std::shared_ptr<client_answer> send(std::vector<std::string> texts) {
    auto out = testing::ask(*sys, clients, current(), chunk_request{key, std::move(texts), "req"});
    sched->run();
    if (alive(current()))
      for (const auto& [id, actors] : st(current()).actors_of)
        supervisors.push_back(actors.supervisor.address());
    return out;
  }

  std::map<std::string, provider_health_stats> health_status() {
    auto out = std::make_shared<std::map<std::string, provider_health_stats>>();
    clients.push_back(sys->spawn(
        [out](caf::event_based_actor* self, health_actor h) {
          self->request(h, std::chrono::seconds{3600}, atom::status::value)
              .then([out](const health_stats& s) { *out = s.providers; }, [](caf::error&) {});
        },
        directory->health()));
    sched->run();
    return *out;
  }

  void kill_batcher() {
    caf::anon_send_exit(current(), caf::exit_reason::kill);
    sched->run();
  }

  static void expect_lost(const client_answer& a) {
    ASSERT_TRUE(a.answered);
    ASSERT_TRUE(a.result.error) << a.error;
    EXPECT_EQ(a.result.error->status, 502);
    EXPECT_EQ(a.result.error->type, "provider_error");
    EXPECT_EQ(a.result.error->provider, "voy");
    EXPECT_NE(a.result.error->message.find("provider 'voy' stopped unexpectedly"),
              std::string::npos)
        << a.result.error->message;
  }
};

TEST_F(supervision, a_batcher_that_dies_answers_every_caller_it_held_and_is_restarted) {
  start();
  auto first = current();
  auto in_flight = send({"a", "b"});
  auto queued = send({"c"});
  ASSERT_EQ(st(first).calls.size(), 1u);
  ASSERT_EQ(st(first).queues.texts(), 1u);
  auto supervisor = st(first).actors_of.begin()->second.supervisor.address();
  kill_batcher();
  expect_lost(*in_flight);
  expect_lost(*queued);
  EXPECT_FALSE(alive(first));
  EXPECT_FALSE(alive(supervisor)) << "the call's supervisor stopped with it";
  // A fresh batcher serves the provider, with no operator involved.
  auto second = current();
  ASSERT_NE(second, first);
  EXPECT_TRUE(alive(second));
  auto next = send({"d"});
  ASSERT_TRUE(st(second).calls.find(1));
  caf::anon_send(second, atom::done::value,
                 batch_outcome{1, matrix_of({"d"}, 1), std::nullopt, false, false, 1});
  sched->run();
  ASSERT_TRUE(next->answered);
  ASSERT_FALSE(next->result.error) << next->result.error->message;
  ASSERT_EQ(next->result.rows.size(), 1u);
  auto expected = fake::fake_vector("voyage-3.5", "", "d", 8);
  std::vector<float> got(next->result.matrix->row(next->result.rows[0]),
                         next->result.matrix->row(next->result.rows[0]) + 8);
  EXPECT_EQ(got, expected);
}

TEST_F(supervision, a_batcher_that_keeps_dying_is_reported_failed_past_the_restart_limit) {
  start(restart_settings{2, 60s});
  auto original = current();
  kill_batcher();
  kill_batcher();
  auto last = current();
  EXPECT_NE(last, original);
  EXPECT_TRUE(alive(last)) << "two restarts within a minute are allowed";
  kill_batcher();
  // The third death within the window is not restarted: the route keeps the dead batcher, whose
  // callers learn at once that it is not running.
  EXPECT_EQ(current(), last);
  EXPECT_FALSE(alive(last));
  auto refused = send({"x"});
  ASSERT_TRUE(refused->answered);
  EXPECT_FALSE(refused->error.empty());
  auto h = health_status().at("voy");
  EXPECT_EQ(h.state, "failed");
  ASSERT_TRUE(h.failure);
  EXPECT_NE(h.failure->find("was not restarted"), std::string::npos);
  // An operator adding it again brings it back.
  directory->start(spec);
  sched->run();
  EXPECT_TRUE(alive(current()));
  EXPECT_EQ(health_status().at("voy").state, "healthy");
}

TEST_F(supervision, restarts_are_counted_over_a_sliding_window) {
  start(restart_settings{1, 60s});
  kill_batcher();
  EXPECT_TRUE(alive(current()));
  sched->advance_time(60s);
  sched->run();
  kill_batcher();
  EXPECT_TRUE(alive(current())) << "the first restart is out of the window";
  kill_batcher();
  EXPECT_FALSE(alive(current()));
}

TEST_F(supervision, drained_and_replaced_batchers_are_not_restarted) {
  start();
  auto first = current();
  directory->start(spec); // an admin update: the old batcher drains and exits normally
  sched->run();
  auto second = current();
  EXPECT_FALSE(alive(first));
  EXPECT_EQ(current(), second);
  directory->stop("voy");
  sched->run();
  EXPECT_FALSE(alive(second));
  EXPECT_FALSE(directory->route("voy"));
}

// The directory's detach and the new batcher's attach come from different senders: removed
// before its batcher has attached, a provider must not stay in the health actor's table.
TEST_F(supervision, a_provider_removed_as_it_starts_leaves_no_health_entry) {
  start();
  auto ghost = spec;
  ghost.name = "ghost";
  directory->start(ghost);
  directory->stop("ghost");
  sched->run();
  auto status = health_status();
  EXPECT_FALSE(status.contains("ghost"));
  EXPECT_TRUE(status.contains("voy"));
}

// A changed provider's old batcher drains and stops; its successor's attach comes from another
// sender and may arrive after the old one's down message. The provider keeps its verdict.
TEST_F(supervision, a_provider_changed_while_sin_binned_stays_sin_binned) {
  start();
  for (int i = 0; i < 5; ++i)
    caf::anon_send(directory->health(), atom::report::value,
                   call_report{"voy", outcome_class::server_error, 1ms, -1, false});
  sched->run();
  ASSERT_EQ(health_status().at("voy").state, "sin-binned");
  auto first = current();
  directory->start(spec); // an admin update
  // The old batcher drains and stops, and the health actor hears it, before the new one starts.
  ASSERT_TRUE(sched->prioritize(first));
  sched->run_once();
  ASSERT_FALSE(alive(first));
  ASSERT_TRUE(sched->prioritize(directory->health()));
  sched->run_once();
  sched->run();
  EXPECT_EQ(health_status().at("voy").state, "sin-binned");
  auto refused = send({"y"});
  ASSERT_TRUE(refused->answered);
  ASSERT_TRUE(refused->result.error);
  EXPECT_EQ(refused->result.error->status, 503);
}

TEST_F(supervision, a_restarted_health_actor_keeps_judging_the_providers) {
  start();
  auto first = directory->health();
  caf::anon_send_exit(first, caf::exit_reason::kill);
  sched->run();
  auto second = directory->health();
  ASSERT_NE(second, first);
  // The batcher attached itself to the new health actor, which now hears its reports...
  EXPECT_TRUE(health_status().contains("voy"));
  EXPECT_EQ(st(current()).health, second);
  for (int i = 0; i < 5; ++i)
    caf::anon_send(second, atom::report::value,
                   call_report{"voy", outcome_class::server_error, 1ms, -1, false});
  sched->run();
  // ...and pushes its verdicts to it: a sin-binned provider refuses new callers at once.
  auto refused = send({"y"});
  ASSERT_TRUE(refused->answered);
  ASSERT_TRUE(refused->result.error);
  EXPECT_EQ(refused->result.error->status, 503);
  EXPECT_EQ(refused->result.error->retry_after_ms, 30'000);
}

// A sole provider that keeps failing is sin-binned too: its callers get a 503 with Retry-After at
// once instead of each paying for calls that fail.
TEST_F(supervision, a_failing_sole_provider_is_sin_binned) {
  start();
  for (int i = 0; i < 5; ++i)
    caf::anon_send(directory->health(), atom::report::value,
                   call_report{"voy", outcome_class::server_error, 1ms, -1, false});
  sched->run();
  EXPECT_EQ(health_status().at("voy").state, "sin-binned");
  auto refused = send({"z"});
  ASSERT_TRUE(refused->answered);
  ASSERT_TRUE(refused->result.error);
  EXPECT_EQ(refused->result.error->status, 503);
  EXPECT_EQ(refused->result.error->type, "provider_unavailable");
  EXPECT_EQ(refused->result.error->retry_after_ms, 30'000);
  EXPECT_TRUE(st(current()).calls.empty());
}

} // namespace
} // namespace emr

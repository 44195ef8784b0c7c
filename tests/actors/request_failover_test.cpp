// How an `any` caller spends its deadline across its routes, on CAF's deterministic test
// scheduler: each route gets a share, and a route that runs out of it leaves the rest to the next.

#include "actors/request.hpp"
#include "tests/actors/actor_fakes.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace {

using namespace std::chrono_literals;
using testing::fake_batcher_impl;

TEST(route_share, splits_what_is_left_evenly_with_a_floor_and_gives_the_last_route_everything) {
  EXPECT_EQ(route_share(1000ms, 2), 500ms);
  EXPECT_EQ(route_share(900ms, 3), 300ms);
  EXPECT_EQ(route_share(1000ms, 1), 1000ms);
  EXPECT_EQ(route_share(600ms, 3), min_route_share);
  EXPECT_EQ(route_share(200ms, 2), 200ms) << "never more than is left";
}

struct request_failover : ::testing::Test, testing::test_system {
  std::vector<batcher_actor> batchers;
  caller_slot slot;
  std::optional<caller_outcome> outcome; ///< once taken from the slot
  clock_time started{};

  void SetUp() override { start_test_system(); }

  void TearDown() override {
    advance(std::chrono::hours{1}); // a caller left waiting by a failed assertion ends too
    for (const auto& b : batchers)
      caf::anon_send_exit(b, caf::exit_reason::kill);
    sched->run();
    batchers.clear();
    sys.reset();
  }

  // An `any` caller of `texts` over providers a, b (and more), each a fake batcher taking
  // `texts_a_call` texts a chunk.
  void start(std::vector<std::string> providers, std::chrono::milliseconds deadline,
             std::vector<std::string> texts = {"x"}, std::size_t texts_a_call = 128) {
    caller_job job;
    job.texts = std::move(texts);
    job.deadline = deadline;
    job.policy = routing_policy::any;
    for (const auto& name : providers) {
      batchers.push_back(caf::actor_cast<batcher_actor>(sys->spawn(testing::fake_batcher, 0)));
      job.routes.push_back(provider_route{name,
                                          provider_type::voyage,
                                          "voyage-3.5",
                                          0,
                                          batch_limits{texts_a_call, 0},
                                          batchers.back(),
                                          nullptr,
                                          {}});
    }
    slot = std::make_shared<outcome_slot<caller_outcome>>();
    started = sched->clock().now();
    sys->spawn(request, std::vector<caller_job>{std::move(job)}, std::vector<caller_slot>{slot},
               arrivals::in_transit{}, nullptr);
    sched->run();
  }

  // The messages route's batcher holds; each carries the caller's one chunk.
  std::vector<testing::fake_batcher_state::held_message>& chunks_at(std::size_t route) {
    return testing::state_of<fake_batcher_impl>(batchers.at(route)).messages;
  }
  // Answers route's first message (its one chunk).
  void answer(std::size_t route, chunk_result result) {
    answer_chunks(route, chunk_results{{std::move(result)}});
  }
  // Answers route's first message, a result for each of its chunks.
  void answer_chunks(std::size_t route, chunk_results results) {
    caf::anon_send(caf::actor_cast<caf::actor>(batchers.at(route)), testing::release_atom::value,
                   std::size_t{0}, std::move(results));
    sched->run();
  }
  void advance(caf::timespan d) {
    sched->advance_time(d);
    sched->run();
  }
  bool answered() {
    if (!outcome)
      outcome = slot->take(0s);
    return outcome.has_value();
  }

  static chunk_result vectors_for(const std::string& text) {
    auto m = std::make_shared<embedding_matrix>();
    m->rows = 1;
    m->dims = 1;
    m->values = {static_cast<float>(text.size())};
    return chunk_result{m, {0}, 1, std::nullopt, "up-1"};
  }
};

TEST_F(request_failover, a_route_that_runs_out_of_its_share_leaves_the_rest_to_the_next) {
  start({"a", "b"}, 1000ms);
  ASSERT_EQ(chunks_at(0).size(), 1u);
  EXPECT_EQ(chunks_at(0)[0].message.chunks.at(0).deadline, started + 500ms)
      << "half the deadline: two routes to try";
  advance(499ms);
  EXPECT_TRUE(chunks_at(1).empty());
  advance(1ms);
  ASSERT_EQ(chunks_at(1).size(), 1u) << "a's share is over: b is tried with the time left";
  EXPECT_EQ(chunks_at(1)[0].message.chunks.at(0).deadline, started + 1000ms);
  EXPECT_FALSE(answered());
  answer(1, vectors_for("x"));
  ASSERT_TRUE(answered());
  auto got = *outcome;
  ASSERT_FALSE(got.error) << got.error->message;
  ASSERT_EQ(got.answers.size(), 1u);
  EXPECT_EQ(got.answers[0].provider, "b");
}

TEST_F(request_failover, the_last_route_running_out_ends_the_caller_with_504_at_its_deadline) {
  start({"a", "b", "c"}, 900ms);
  EXPECT_EQ(chunks_at(0)[0].message.chunks.at(0).deadline, started + 300ms);
  advance(300ms);
  ASSERT_EQ(chunks_at(1).size(), 1u);
  EXPECT_EQ(chunks_at(1)[0].message.chunks.at(0).deadline, started + 600ms);
  advance(300ms);
  ASSERT_EQ(chunks_at(2).size(), 1u);
  EXPECT_EQ(chunks_at(2)[0].message.chunks.at(0).deadline, started + 900ms);
  advance(299ms);
  EXPECT_FALSE(answered());
  advance(1ms);
  ASSERT_TRUE(answered());
  auto got = *outcome;
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->status, 504);
  EXPECT_EQ(got.error->type, "deadline_exceeded");
}

TEST_F(request_failover, a_route_refused_at_once_hands_the_whole_remaining_deadline_on) {
  start({"a", "b"}, 1000ms);
  advance(10ms);
  answer(0,
         chunk_result{nullptr, {}, 0, failure{429, "rate_limited", "paused", 86'400'000, "a"}, {}});
  ASSERT_EQ(chunks_at(1).size(), 1u);
  EXPECT_EQ(chunks_at(1)[0].message.chunks.at(0).deadline, started + 1000ms);
  answer(1, vectors_for("x"));
  ASSERT_TRUE(answered());
  auto got = *outcome;
  ASSERT_FALSE(got.error);
  EXPECT_EQ(got.answers[0].provider, "b");
}

TEST_F(request_failover, every_route_failing_within_its_share_names_each_failure) {
  start({"a", "b"}, 1000ms);
  advance(500ms); // a's share runs out
  answer(1, chunk_result{nullptr, {}, 0, failure{502, "provider_error", "boom", -1, "b"}, {}});
  ASSERT_TRUE(answered());
  auto got = *outcome;
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->status, 502);
  EXPECT_NE(got.error->message.find("a: provider 'a' gave no answer within its 500 ms share"),
            std::string::npos)
      << got.error->message;
  EXPECT_NE(got.error->message.find("b: boom"), std::string::npos) << got.error->message;
}

// A provider billed the chunks it answered on a route that failed on another chunk: the caller
// got nothing from that route, but its key is charged for them (usage and quotas).
TEST_F(request_failover, tokens_billed_on_a_route_that_failed_go_with_the_answer) {
  start({"a", "b"}, 1000ms, {"x", "yy"}, 1);
  ASSERT_EQ(chunks_at(0).size(), 1u);
  ASSERT_EQ(chunks_at(0)[0].message.chunks.size(), 2u);
  auto billed = vectors_for("x");
  billed.tokens = 7;
  chunk_result refused;
  refused.error = failure{400, "invalid_request", "provider 'a' answered 400", -1, "a"};
  answer_chunks(0, chunk_results{{billed, refused}});
  ASSERT_EQ(chunks_at(1).size(), 1u) << "a failed: b is tried";
  answer_chunks(1, chunk_results{{vectors_for("x"), vectors_for("yy")}});
  ASSERT_TRUE(answered());
  ASSERT_FALSE(outcome->error) << outcome->error->message;
  EXPECT_EQ(outcome->answers.at(0).provider, "b");
  EXPECT_EQ(outcome->answers.at(0).tokens, 2);
  EXPECT_EQ(outcome->unanswered_tokens, 7);
}

TEST_F(request_failover, tokens_billed_before_every_route_failed_go_with_the_error) {
  start({"a"}, 1000ms, {"x", "yy"}, 1);
  ASSERT_EQ(chunks_at(0).size(), 1u);
  auto billed = vectors_for("x");
  billed.tokens = 7;
  chunk_result refused;
  refused.error = failure{400, "invalid_request", "provider 'a' answered 400", -1, "a"};
  answer_chunks(0, chunk_results{{billed, refused}});
  ASSERT_TRUE(answered());
  ASSERT_TRUE(outcome->error);
  EXPECT_EQ(outcome->error->status, 400);
  EXPECT_EQ(outcome->unanswered_tokens, 7);
}

} // namespace
} // namespace emr

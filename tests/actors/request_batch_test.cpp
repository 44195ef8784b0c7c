// A request actor carrying several callers (a batch API request's sub-requests), on CAF's
// deterministic test scheduler: each batcher gets every first chunk in one message, and each
// caller is answered on its own.

#include "actors/request.hpp"
#include "tests/actors/actor_fakes.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace request_batch_tests {

using namespace std::chrono_literals;
using testing::fake_batcher_impl;

std::vector<std::string> numbered(std::size_t n) {
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < n; ++i)
    texts.push_back("text " + std::to_string(i));
  return texts;
}

struct request_batch : ::testing::Test, testing::test_system {
  batcher_actor voyage_batcher, cohere_batcher;
  provider_route voyage, cohere;
  std::vector<std::future<caller_outcome>> outcomes;

  void SetUp() override {
    start_test_system();
    voyage_batcher = caf::actor_cast<batcher_actor>(sys->spawn(testing::fake_batcher, 0));
    cohere_batcher = caf::actor_cast<batcher_actor>(sys->spawn(testing::fake_batcher, 0));
    voyage = provider_route{"voyage",           provider_type::voyage, "voyage-3.5", 0,
                            batch_limits{2, 0}, voyage_batcher,        nullptr};
    cohere = provider_route{"cohere", provider_type::cohere, "embed-v4.0",
                            0,        batch_limits{96, 0},   cohere_batcher,
                            nullptr};
  }
  void TearDown() override {
    sched->advance_time(std::chrono::hours{1}); // callers left waiting by a failed assertion end
    sched->run();
    for (const auto& b : {voyage_batcher, cohere_batcher})
      caf::anon_send_exit(b, caf::exit_reason::kill);
    sched->run();
    voyage_batcher = cohere_batcher = nullptr;
    voyage.batcher = cohere.batcher = nullptr;
    sys.reset();
  }

  caller_job job(std::vector<std::string> texts, std::string input_type,
                 std::vector<provider_route> routes, routing_policy policy, std::string id) {
    caller_job j;
    j.texts = std::move(texts);
    j.input_type = std::move(input_type);
    j.routes = std::move(routes);
    j.policy = policy;
    j.deadline = 10s;
    j.request_id = std::move(id);
    return j;
  }
  void start(std::vector<caller_job> jobs, arrivals::in_transit arriving = {}) {
    std::vector<outcome_promise> outs;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      outs.push_back(std::make_shared<std::promise<caller_outcome>>());
      outcomes.push_back(outs.back()->get_future());
    }
    sys->spawn(request, std::move(jobs), std::move(outs), std::move(arriving));
    sched->run();
  }
  std::vector<testing::fake_batcher_state::held_message>& messages(const batcher_actor& b) {
    return testing::state_of<fake_batcher_impl>(b).messages;
  }
  bool ready(std::size_t i) { return outcomes.at(i).wait_for(0s) == std::future_status::ready; }
};

TEST_F(request_batch, every_first_chunk_for_a_batcher_travels_in_one_message) {
  start({job(numbered(3), "document", {voyage, cohere}, routing_policy::any, "a"),
         job({"both"}, "document", {voyage, cohere}, routing_policy::all, "b"),
         job({"q"}, "query", {voyage}, routing_policy::any, "c"),
         job({}, "document", {voyage}, routing_policy::any, "d")});
  ASSERT_TRUE(ready(3)) << "nothing to embed is answered at once";
  EXPECT_EQ(outcomes[3].get().error->status, 400);
  // Three texts at two per call are two chunks; `any` sends only to its first route (cohere
  // would get a chunk only on failover); `all` sends to every route.
  ASSERT_EQ(messages(voyage_batcher).size(), 1u);
  const auto& to_voyage = messages(voyage_batcher)[0].message.chunks;
  ASSERT_EQ(to_voyage.size(), 4u);
  EXPECT_EQ(to_voyage[0].texts, (std::vector<std::string>{"text 0", "text 1"}));
  EXPECT_EQ(to_voyage[1].texts, (std::vector<std::string>{"text 2"}));
  EXPECT_EQ(to_voyage[2].texts, (std::vector<std::string>{"both"}));
  EXPECT_EQ(to_voyage[3].texts, (std::vector<std::string>{"q"}));
  EXPECT_EQ(to_voyage[0].request_id, "a");
  EXPECT_EQ(to_voyage[3].request_id, "c");
  EXPECT_EQ(to_voyage[3].key, (batch_key{"voyage-3.5", "query", 0}));
  ASSERT_EQ(messages(cohere_batcher).size(), 1u);
  EXPECT_EQ(messages(cohere_batcher)[0].message.chunks.size(), 1u);
  EXPECT_EQ(messages(cohere_batcher)[0].message.chunks[0].texts,
            (std::vector<std::string>{"both"}));
}

TEST_F(request_batch, a_request_counts_as_arriving_until_its_chunks_are_sent) {
  auto arriving = std::make_shared<arrivals>();
  arrivals::in_transit handed;
  {
    arrivals::entry on_its_http_thread{*arriving};
    handed = arrivals::hand_over_current();
  }
  EXPECT_EQ(arriving->under_way(), 1u) << "its HTTP thread is done with it; it is not sent yet";
  start({job({"x"}, "document", {voyage}, routing_policy::any, "a")}, std::move(handed));
  EXPECT_EQ(messages(voyage_batcher).size(), 1u);
  EXPECT_EQ(arriving->under_way(), 0u);
}

TEST_F(request_batch, each_caller_is_answered_from_its_own_chunks_and_fails_over_alone) {
  start({job({"x"}, "document", {voyage, cohere}, routing_policy::any, "a"),
         job({"y"}, "document", {voyage}, routing_policy::any, "b")});
  ASSERT_EQ(messages(voyage_batcher).size(), 1u);
  auto m = std::make_shared<embedding_matrix>();
  m->rows = 2;
  m->dims = 1;
  m->values = {1.0f, 2.0f};
  // The batcher answers the message: x failed, y got row 1 of a call.
  chunk_results answers;
  answers.results.push_back(
      chunk_result{nullptr, {}, 0, failure{502, "provider_error", "boom", -1, "voyage"}, {}});
  answers.results.push_back(chunk_result{m, {1}, 3, std::nullopt, "up-1"});
  caf::anon_send(caf::actor_cast<caf::actor>(voyage_batcher), testing::release_atom::value,
                 std::size_t{0}, std::move(answers));
  sched->run();
  ASSERT_TRUE(ready(1));
  auto y = outcomes[1].get();
  ASSERT_FALSE(y.error);
  ASSERT_EQ(y.answers.size(), 1u);
  EXPECT_EQ(y.answers[0].provider, "voyage");
  EXPECT_EQ(y.answers[0].tokens, 3);
  ASSERT_EQ(y.answers[0].chunks.size(), 1u);
  EXPECT_EQ(y.answers[0].chunks[0].rows, (std::vector<std::uint32_t>{1}));
  ASSERT_FALSE(ready(0)) << "x fails over to cohere, alone";
  ASSERT_EQ(messages(cohere_batcher).size(), 1u);
  ASSERT_EQ(messages(cohere_batcher)[0].message.chunks.size(), 1u);
  EXPECT_EQ(messages(cohere_batcher)[0].message.chunks[0].texts, (std::vector<std::string>{"x"}));
  caf::anon_send(caf::actor_cast<caf::actor>(cohere_batcher), testing::release_atom::value,
                 std::size_t{0}, chunk_results{{chunk_result{m, {0}, 1, std::nullopt, "up-2"}}});
  sched->run();
  ASSERT_TRUE(ready(0));
  auto x = outcomes[0].get();
  ASSERT_FALSE(x.error);
  EXPECT_EQ(x.answers[0].provider, "cohere");
  EXPECT_EQ(x.answers[0].chunks[0].rows, (std::vector<std::uint32_t>{0}));
}

TEST_F(request_batch, a_caller_given_a_shorter_share_fails_over_when_it_ends_not_the_message) {
  // a may spend half its 10 s on voyage; b, with voyage alone, all 10 s. One message carries
  // both, waiting 10 s; a's own timer ends its turn at 5 s.
  start({job({"x"}, "document", {voyage, cohere}, routing_policy::any, "a"),
         job({"y"}, "document", {voyage}, routing_policy::any, "b")});
  ASSERT_EQ(messages(voyage_batcher).size(), 1u);
  sched->advance_time(4999ms);
  sched->run();
  EXPECT_TRUE(messages(cohere_batcher).empty());
  sched->advance_time(1ms);
  sched->run();
  ASSERT_EQ(messages(cohere_batcher).size(), 1u) << "a's share of voyage is over";
  EXPECT_EQ(messages(cohere_batcher)[0].message.chunks.at(0).texts,
            (std::vector<std::string>{"x"}));
  EXPECT_FALSE(ready(1)) << "b still waits for voyage";
  auto m = std::make_shared<embedding_matrix>();
  m->rows = 2;
  m->dims = 1;
  m->values = {1.0f, 2.0f};
  // voyage answers both at last: a's row no longer counts, b's does.
  caf::anon_send(caf::actor_cast<caf::actor>(voyage_batcher), testing::release_atom::value,
                 std::size_t{0},
                 chunk_results{{chunk_result{m, {0}, 1, std::nullopt, "up-1"},
                                chunk_result{m, {1}, 1, std::nullopt, "up-1"}}});
  sched->run();
  ASSERT_TRUE(ready(1));
  EXPECT_EQ(outcomes[1].get().answers.at(0).chunks.at(0).rows, (std::vector<std::uint32_t>{1}));
  EXPECT_FALSE(ready(0)) << "a waits for cohere now";
  caf::anon_send(caf::actor_cast<caf::actor>(cohere_batcher), testing::release_atom::value,
                 std::size_t{0}, chunk_results{{chunk_result{m, {0}, 1, std::nullopt, "up-2"}}});
  sched->run();
  ASSERT_TRUE(ready(0));
  EXPECT_EQ(outcomes[0].get().answers.at(0).provider, "cohere");
}

} // namespace request_batch_tests
} // namespace emr

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
  std::vector<caller_slot> slots;
  std::vector<std::optional<caller_outcome>> outcomes; ///< each once taken from its slot
  std::shared_ptr<embedding_cache> cache;              ///< none unless a test sets one

  void SetUp() override {
    start_test_system();
    voyage_batcher = caf::actor_cast<batcher_actor>(sys->spawn(testing::fake_batcher, 0));
    cohere_batcher = caf::actor_cast<batcher_actor>(sys->spawn(testing::fake_batcher, 0));
    voyage = provider_route{"voyage",           provider_type::voyage, "voyage-3.5", 0,
                            batch_limits{2, 0}, voyage_batcher,        nullptr,      {}};
    cohere = provider_route{"cohere",
                            provider_type::cohere,
                            "embed-v4.0",
                            0,
                            batch_limits{96, 0},
                            cohere_batcher,
                            nullptr,
                            {}};
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
    std::vector<caller_slot> outs;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      outs.push_back(std::make_shared<outcome_slot<caller_outcome>>());
      slots.push_back(outs.back());
      outcomes.emplace_back();
    }
    sys->spawn(request, std::move(jobs), std::move(outs), std::move(arriving), cache);
    sched->run();
  }
  std::vector<testing::fake_batcher_state::held_message>& messages(const batcher_actor& b) {
    return testing::state_of<fake_batcher_impl>(b).messages;
  }
  bool ready(std::size_t i) {
    if (!outcomes.at(i))
      outcomes[i] = slots.at(i)->take(0s);
    return outcomes[i].has_value();
  }
};

TEST_F(request_batch, every_first_chunk_for_a_batcher_travels_in_one_message) {
  start({job(numbered(3), "document", {voyage, cohere}, routing_policy::any, "a"),
         job({"both"}, "document", {voyage, cohere}, routing_policy::all, "b"),
         job({"q"}, "query", {voyage}, routing_policy::any, "c"),
         job({}, "document", {voyage}, routing_policy::any, "d")});
  ASSERT_TRUE(ready(3)) << "nothing to embed is answered at once";
  EXPECT_EQ(outcomes[3]->error->status, 400);
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
  auto y = *outcomes[1];
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
  auto x = *outcomes[0];
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
  EXPECT_EQ(outcomes[1]->answers.at(0).chunks.at(0).rows, (std::vector<std::uint32_t>{1}));
  EXPECT_FALSE(ready(0)) << "a waits for cohere now";
  caf::anon_send(caf::actor_cast<caf::actor>(cohere_batcher), testing::release_atom::value,
                 std::size_t{0}, chunk_results{{chunk_result{m, {0}, 1, std::nullopt, "up-2"}}});
  sched->run();
  ASSERT_TRUE(ready(0));
  EXPECT_EQ(outcomes[0]->answers.at(0).provider, "cohere");
}

// A matrix whose row i holds {first + i}.
shared_matrix rows_from(float first, std::size_t n) {
  auto m = std::make_shared<embedding_matrix>();
  m->rows = n;
  m->dims = 1;
  for (std::size_t i = 0; i < n; ++i)
    m->values.push_back(first + static_cast<float>(i));
  return m;
}

std::vector<float> values_of(const caller_outcome& outcome) {
  std::vector<float> out;
  outcome.answers.at(0).for_each_vector(
      [&](const float* row, std::size_t) { out.push_back(*row); });
  return out;
}

struct request_cache : request_batch {
  void SetUp() override {
    request_batch::SetUp();
    cache = std::make_shared<embedding_cache>(cache_settings{1 << 20, 60s});
    voyage.cache_scope = "voyage scope";
    voyage.limits = batch_limits{8, 0};
    cohere.cache_scope = "cohere scope";
  }
  // Answers the held message `index` of a batcher (voyage's unless named) with one call's rows
  // for its single chunk.
  void answer(std::size_t index, shared_matrix m, std::int64_t tokens,
              const batcher_actor* batcher = nullptr) {
    chunk_results answers;
    std::vector<std::uint32_t> rows(m->rows);
    for (std::uint32_t i = 0; i < rows.size(); ++i)
      rows[i] = i;
    answers.results.push_back(chunk_result{std::move(m), rows, tokens, std::nullopt, "up"});
    caf::anon_send(caf::actor_cast<caf::actor>(batcher ? *batcher : voyage_batcher),
                   testing::release_atom::value, index, std::move(answers));
    sched->run();
  }
};

TEST_F(request_cache, a_partly_cached_caller_sends_only_its_new_texts_and_gets_every_row_in_order) {
  start({job({"aa", "bb"}, "document", {voyage}, routing_policy::any, "first")});
  answer(0, rows_from(1, 2), 10); // aa = 1, bb = 2; 5 tokens each
  ASSERT_TRUE(ready(0));
  EXPECT_EQ(cache->stats().stored, 2u);

  start({job({"xx", "aa", "yy", "bb"}, "document", {voyage}, routing_policy::any, "second")});
  ASSERT_EQ(messages(voyage_batcher).size(), 2u);
  const auto& sent = messages(voyage_batcher)[1].message.chunks;
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].texts, (std::vector<std::string>{"xx", "yy"}));
  answer(1, rows_from(7, 2), 6); // xx = 7, yy = 8
  ASSERT_TRUE(ready(1));
  auto second = *outcomes[1];
  ASSERT_FALSE(second.error);
  EXPECT_EQ(values_of(second), (std::vector<float>{7, 1, 8, 2}));
  EXPECT_EQ(second.answers[0].tokens, 16) << "6 for the call, 5 for each cached text";
  EXPECT_EQ(cache->stats().hits, 2u);

  start({job({"bb", "yy", "aa"}, "document", {voyage}, routing_policy::any, "third")});
  EXPECT_EQ(messages(voyage_batcher).size(), 2u) << "every text was cached: nothing is sent";
  ASSERT_TRUE(ready(2));
  auto third = *outcomes[2];
  ASSERT_FALSE(third.error);
  EXPECT_EQ(values_of(third), (std::vector<float>{2, 8, 1}));
  EXPECT_EQ(third.answers[0].tokens, 13);
}

TEST_F(request_cache, an_all_caller_whose_routes_are_all_cached_gets_every_providers_rows) {
  start({job({"aa", "bb"}, "document", {voyage, cohere}, routing_policy::all, "first")});
  answer(0, rows_from(1, 2), 4);
  answer(0, rows_from(5, 2), 6, &cohere_batcher);
  ASSERT_TRUE(ready(0));
  start({job({"bb", "aa"}, "document", {voyage, cohere}, routing_policy::all, "again")});
  EXPECT_EQ(messages(voyage_batcher).size(), 1u);
  EXPECT_EQ(messages(cohere_batcher).size(), 1u);
  ASSERT_TRUE(ready(1));
  auto again = *outcomes[1];
  ASSERT_FALSE(again.error);
  ASSERT_EQ(again.answers.size(), 2u);
  std::vector<float> voyage_rows, cohere_rows;
  again.answers[0].for_each_vector([&](const float* r, std::size_t) { voyage_rows.push_back(*r); });
  again.answers[1].for_each_vector([&](const float* r, std::size_t) { cohere_rows.push_back(*r); });
  EXPECT_EQ(voyage_rows, (std::vector<float>{2, 1}));
  EXPECT_EQ(cohere_rows, (std::vector<float>{6, 5}));
  EXPECT_EQ(again.answers[0].cached_texts, 2u);
  EXPECT_EQ(again.answers[1].tokens, 6);

  // One route cached, the other not: the caller waits for the other.
  start({job({"aa"}, "query", {cohere}, routing_policy::any, "query-cohere")});
  answer(1, rows_from(9, 1), 1, &cohere_batcher);
  start({job({"aa"}, "query", {voyage, cohere}, routing_policy::all, "half")});
  EXPECT_EQ(messages(voyage_batcher).size(), 2u);
  EXPECT_EQ(messages(cohere_batcher).size(), 2u) << "cohere's query vector was cached";
  EXPECT_FALSE(ready(3));
  answer(1, rows_from(3, 1), 1);
  ASSERT_TRUE(ready(3));
  auto half = *outcomes[3];
  ASSERT_FALSE(half.error);
  ASSERT_EQ(half.answers.size(), 2u);
  EXPECT_EQ(half.answers[1].cached_texts, 1u);
}

TEST_F(request_cache, another_input_type_or_model_is_another_entry) {
  start({job({"aa"}, "document", {voyage}, routing_policy::any, "first")});
  answer(0, rows_from(1, 1), 2);
  start({job({"aa"}, "query", {voyage}, routing_policy::any, "query")});
  auto other_model = voyage;
  other_model.model = "voyage-3-large";
  start({job({"aa"}, "document", {other_model}, routing_policy::any, "large")});
  EXPECT_EQ(messages(voyage_batcher).size(), 3u);
  EXPECT_FALSE(ready(1));
  EXPECT_FALSE(ready(2));
}

TEST_F(request_cache, a_caller_that_refuses_the_cache_is_sent_upstream_and_leaves_nothing) {
  auto refusing = job({"aa"}, "document", {voyage}, routing_policy::any, "no-store");
  refusing.cache = {false, false};
  start({refusing});
  answer(0, rows_from(1, 1), 2);
  ASSERT_TRUE(ready(0));
  EXPECT_EQ(cache->stats().stored, 0u);

  auto fresh = job({"aa"}, "document", {voyage}, routing_policy::any, "no-cache");
  fresh.cache = {false, true};
  start({fresh});
  answer(1, rows_from(3, 1), 2);
  EXPECT_EQ(cache->stats().stored, 1u) << "no-cache asks for fresh vectors and keeps them";
  start({job({"aa"}, "document", {voyage}, routing_policy::any, "after")});
  ASSERT_TRUE(ready(2));
  EXPECT_EQ(values_of(*outcomes[2]), (std::vector<float>{3}));
}

TEST_F(request_cache, a_vector_past_its_time_to_live_is_asked_again) {
  start({job({"aa"}, "document", {voyage}, routing_policy::any, "first")});
  answer(0, rows_from(1, 1), 2);
  sched->advance_time(61s);
  sched->run();
  start({job({"aa"}, "document", {voyage}, routing_policy::any, "later")});
  EXPECT_EQ(messages(voyage_batcher).size(), 2u);
  EXPECT_EQ(cache->stats().expired, 1u);
}

} // namespace request_batch_tests
} // namespace emr

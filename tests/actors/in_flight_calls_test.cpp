// The batcher's calls in flight, without an actor: each distinct text is sent once, every caller
// maps to its own rows, and a caller whose texts are already out rides along.

#include "actors/in_flight_calls.hpp"

#include "providers/provider.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace in_flight_calls_tests {

using namespace std::chrono_literals;

const batch_key documents{"voyage-3.5", "document", 0};
const clock_time t0{};

pending_chunk chunk(std::vector<std::string> texts, clock_time deadline = t0 + 1s) {
  auto tokens = texts.size() * 2;
  return pending_chunk{std::move(texts), tokens, "req", {}, t0, deadline, 0, 0};
}

std::vector<pending_chunk> chunks(std::initializer_list<std::vector<std::string>> texts) {
  std::vector<pending_chunk> out;
  for (const auto& t : texts)
    out.push_back(chunk(t));
  return out;
}

std::vector<std::string> sent(const upstream_batch& batch) {
  return {batch.texts.begin(), batch.texts.end()};
}

TEST(in_flight_calls, a_call_sends_each_distinct_text_once_and_maps_every_caller_to_its_rows) {
  in_flight_calls calls;
  auto opened = calls.open(documents, chunks({{"x", "y"}, {"y", "z", "x"}}), false);
  EXPECT_EQ(opened.id, 1u);
  EXPECT_EQ(opened.batch.model, "voyage-3.5");
  EXPECT_EQ(opened.batch.input_type, "document");
  EXPECT_EQ(sent(opened.batch), (std::vector<std::string>{"x", "y", "z"}));
  const auto& call = *calls.find(1);
  EXPECT_EQ(call.rows, (std::vector<std::vector<std::uint32_t>>{{0, 1}, {1, 2, 0}}));
  EXPECT_EQ(call.tokens, 10u) << "every caller's share";
  EXPECT_EQ(call.sent_tokens, 3 * estimate_tokens("x")) << "what goes upstream: each text once";
  EXPECT_EQ(call.callers_wait_until, t0 + 1s);
  EXPECT_EQ(calls.open(documents, chunks({{"w"}}), false).id, 2u) << "ids are not reused";
}

TEST(in_flight_calls, a_chunk_whose_texts_are_all_out_joins_that_call) {
  in_flight_calls calls;
  calls.open(documents, chunks({{"x", "y"}}), false);
  auto late = chunk({"y", "x"}, t0 + 5s);
  auto joined = calls.join(documents, late);
  ASSERT_TRUE(joined);
  EXPECT_EQ(joined->id, 1u);
  EXPECT_TRUE(joined->extends_wait);
  const auto& call = *calls.find(1);
  EXPECT_EQ(call.chunks.size(), 2u);
  EXPECT_EQ(call.rows.back(), (std::vector<std::uint32_t>{1, 0}));
  EXPECT_EQ(call.callers_wait_until, t0 + 5s);
  EXPECT_EQ(call.tokens, 8u);
  EXPECT_EQ(call.sent_tokens, 2 * estimate_tokens("x")) << "a chunk riding along sends nothing";
  auto hasty = chunk({"x"}, t0 + 2s);
  ASSERT_TRUE(calls.join(documents, hasty));
  EXPECT_EQ(calls.find(1)->callers_wait_until, t0 + 5s) << "a hastier caller changes nothing";
}

TEST(in_flight_calls, no_join_for_a_text_not_out_another_key_or_a_probe) {
  in_flight_calls calls;
  calls.open(documents, chunks({{"x"}}), false);
  calls.open(batch_key{"voyage-3.5", "", 0}, chunks({{"p"}}), true);
  auto partly = chunk({"x", "new"});
  EXPECT_FALSE(calls.join(documents, partly));
  EXPECT_EQ(partly.texts.size(), 2u) << "a chunk that joins nothing is left as it was";
  auto other_key = chunk({"x"});
  EXPECT_FALSE(calls.join(batch_key{"voyage-3.5", "query", 0}, other_key));
  auto probed = chunk({"p"});
  EXPECT_FALSE(calls.join(batch_key{"voyage-3.5", "", 0}, probed)) << "probes carry nobody";
}

TEST(in_flight_calls, a_closed_call_is_handed_over_whole_and_gone) {
  in_flight_calls calls;
  calls.open(documents, chunks({{"x", "y"}}), false);
  auto call = calls.close(1);
  ASSERT_TRUE(call);
  EXPECT_EQ(call->row_of.at("y"), 1u) << "the text views survive the move";
  EXPECT_TRUE(calls.empty());
  EXPECT_FALSE(calls.close(1));
  auto again = chunk({"x"});
  EXPECT_FALSE(calls.join(documents, again));
}

TEST(usage_share, splits_a_calls_usage_by_estimated_tokens) {
  EXPECT_EQ(usage_share(35, 2, 7), 10);
  EXPECT_EQ(usage_share(35, 5, 7), 25);
  EXPECT_EQ(usage_share(35, 5, 0), 0);
}

} // namespace in_flight_calls_tests
} // namespace emr

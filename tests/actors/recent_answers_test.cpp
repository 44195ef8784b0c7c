// The batcher's recent answers, on an injected clock: identical texts asked again within the
// reuse time are answered from the call that carried them, and nothing is kept past it.

#include "actors/recent_answers.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace recent_answers_tests {

using namespace std::chrono_literals;

const batch_key documents{"voyage-3.5", "document", 0};
const clock_time t0{};

in_flight_call answered_call(std::vector<std::vector<std::string>> texts, std::string id) {
  in_flight_calls calls;
  std::vector<pending_chunk> chunks;
  for (auto& t : texts)
    chunks.push_back(pending_chunk{std::move(t), 4, "req", {}, t0, clock_time::max(), 0, 0});
  auto opened = calls.open(documents, std::move(chunks), false);
  calls.find(opened.id)->upstream_id = std::move(id);
  return std::move(*calls.close(opened.id));
}

shared_matrix matrix(std::size_t rows, std::int64_t tokens) {
  auto m = std::make_shared<embedding_matrix>();
  m->rows = rows;
  m->dims = 1;
  for (std::size_t i = 0; i < rows; ++i)
    m->values.push_back(static_cast<float>(i));
  m->total_tokens = tokens;
  return m;
}

TEST(recent_answers, texts_asked_again_are_answered_from_the_call_that_carried_them) {
  recent_answers recent{1000ms};
  auto m = matrix(3, 80);
  recent.remember(answered_call({{"x", "y"}, {"z"}}, "up-1"), m, t0);
  auto again = recent.find(documents, {"z", "x"}, 4, t0 + 999ms);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->matrix, m);
  EXPECT_EQ(again->rows, (std::vector<std::uint32_t>{2, 0}));
  EXPECT_EQ(again->tokens, 40) << "4 of the call's 8 estimated tokens";
  EXPECT_EQ(again->upstream_id, "up-1");
  EXPECT_FALSE(recent.find(documents, {"x", "new"}, 4, t0)) << "every text must have been carried";
  EXPECT_FALSE(recent.find(batch_key{"voyage-3.5", "query", 0}, {"x"}, 4, t0))
      << "another key's vectors differ";
  EXPECT_FALSE(recent.find(documents, {"x"}, 4, t0 + 1000ms)) << "kept for the reuse time only";
  EXPECT_EQ(recent.size(), 0u);
}

TEST(recent_answers, a_text_in_two_calls_is_answered_from_the_newer_until_it_expires) {
  recent_answers recent{1000ms};
  auto older = matrix(2, 8), newer = matrix(2, 8);
  recent.remember(answered_call({{"x", "y"}}, "up-1"), older, t0);
  recent.remember(answered_call({{"z", "x"}}, "up-2"), newer, t0 + 500ms);
  auto x = recent.find(documents, {"x"}, 2, t0 + 600ms);
  ASSERT_TRUE(x);
  EXPECT_EQ(x->matrix, newer);
  EXPECT_EQ(x->rows, (std::vector<std::uint32_t>{1}));
  auto x_later = recent.find(documents, {"x"}, 2, t0 + 1100ms);
  ASSERT_TRUE(x_later) << "the older call expired; the newer still answers";
  EXPECT_EQ(x_later->matrix, newer);
  EXPECT_FALSE(recent.find(documents, {"y"}, 2, t0 + 1100ms)) << "only the expired call had y";
}

TEST(recent_answers, at_most_max_calls_are_kept_the_oldest_going_first) {
  recent_answers recent{1000ms, 2};
  recent.remember(answered_call({{"a"}}, "1"), matrix(1, 1), t0);
  recent.remember(answered_call({{"b"}}, "2"), matrix(1, 1), t0);
  recent.remember(answered_call({{"c"}}, "3"), matrix(1, 1), t0);
  EXPECT_EQ(recent.size(), 2u);
  EXPECT_FALSE(recent.find(documents, {"a"}, 1, t0));
  EXPECT_TRUE(recent.find(documents, {"b"}, 1, t0));
  EXPECT_TRUE(recent.find(documents, {"c"}, 1, t0));
}

TEST(recent_answers, a_reuse_time_of_zero_keeps_nothing) {
  recent_answers recent{0ms};
  recent.remember(answered_call({{"a"}}, "1"), matrix(1, 1), t0);
  EXPECT_EQ(recent.size(), 0u);
  EXPECT_FALSE(recent.find(documents, {"a"}, 1, t0));
}

} // namespace recent_answers_tests
} // namespace emr

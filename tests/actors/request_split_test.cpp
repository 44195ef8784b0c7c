// split_into_chunks and combine_failures: the request actor's pure helpers.

#include "actors/request.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace {

std::vector<std::string> numbered(std::size_t n, std::size_t length = 5) {
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < n; ++i) {
    auto t = "t" + std::to_string(i);
    t.resize(std::max(length, t.size()), 'x');
    texts.push_back(t);
  }
  return texts;
}

TEST(split_into_chunks, splits_by_text_count_in_order) {
  auto texts = numbered(300);
  auto chunks = split_into_chunks(texts, batch_limits{128, 0});
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].size(), 128u);
  EXPECT_EQ(chunks[1].size(), 128u);
  EXPECT_EQ(chunks[2].size(), 44u);
  std::vector<std::string> joined;
  for (const auto& c : chunks)
    joined.insert(joined.end(), c.begin(), c.end());
  EXPECT_EQ(joined, texts);
}

TEST(split_into_chunks, exact_multiple_has_no_empty_tail) {
  auto chunks = split_into_chunks(numbered(256), batch_limits{128, 0});
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[1].size(), 128u);
}

TEST(split_into_chunks, fewer_texts_than_the_limit_make_one_chunk) {
  auto chunks = split_into_chunks(numbered(3), batch_limits{128, 0});
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].size(), 3u);
  EXPECT_TRUE(split_into_chunks({}, batch_limits{128, 0}).empty());
}

TEST(split_into_chunks, splits_by_token_cap) {
  // 299 bytes estimate to 100 tokens each; a cap of 250 holds two per chunk.
  auto texts = numbered(5, 299);
  ASSERT_EQ(estimate_tokens(texts[0]), 100u);
  auto chunks = split_into_chunks(texts, batch_limits{128, 250});
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0], (std::vector<std::string>{texts[0], texts[1]}));
  EXPECT_EQ(chunks[1], (std::vector<std::string>{texts[2], texts[3]}));
  EXPECT_EQ(chunks[2], (std::vector<std::string>{texts[4]}));
  EXPECT_EQ(chunk_ends(texts, batch_limits{128, 250}), (std::vector<std::size_t>{2, 4, 5}));
}

TEST(split_into_chunks, token_cap_exactly_reached_still_fits) {
  auto texts = numbered(4, 299);
  auto chunks = split_into_chunks(texts, batch_limits{128, 200});
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].size(), 2u);
}

TEST(split_into_chunks, both_caps_apply) {
  auto texts = numbered(10, 299); // 100 tokens each
  auto chunks = split_into_chunks(texts, batch_limits{3, 1000});
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[3].size(), 1u);
}

failure f(int status, std::string provider, std::int64_t retry_after = -1,
          std::string message = "m") {
  return failure{status, status == 429 ? "rate_limited" : "x", provider + " " + message,
                 retry_after, provider};
}

TEST(combine_failures, single_failure_is_passed_through) {
  auto one = f(503, "a", 1200, "sin-binned");
  auto c = combine_failures({one});
  EXPECT_EQ(c.status, 503);
  EXPECT_EQ(c.message, one.message);
  EXPECT_EQ(c.retry_after_ms, 1200);
  EXPECT_EQ(c.provider, "a");
}

TEST(combine_failures, rate_limit_wins_with_the_largest_retry_after) {
  auto c = combine_failures({f(502, "a"), f(429, "b", 1500), f(429, "c", 4000), f(400, "d")});
  EXPECT_EQ(c.status, 429);
  EXPECT_EQ(c.type, "rate_limited");
  EXPECT_EQ(c.retry_after_ms, 4000);
}

TEST(combine_failures, all_invalid_is_400) {
  auto c = combine_failures({f(400, "a"), f(400, "b")});
  EXPECT_EQ(c.status, 400);
  EXPECT_EQ(c.type, "invalid_request");
  EXPECT_EQ(c.retry_after_ms, -1);
}

TEST(combine_failures, mixed_is_502_listing_every_provider) {
  auto c = combine_failures({f(400, "alpha", -1, "bad input"), f(502, "beta", -1, "down"),
                             f(503, "gamma", 3000, "sin-binned")});
  EXPECT_EQ(c.status, 502);
  EXPECT_EQ(c.type, "provider_error");
  for (auto s : {"alpha: alpha bad input", "beta: beta down", "gamma: gamma sin-binned"})
    EXPECT_NE(c.message.find(s), std::string::npos) << c.message;
}

TEST(combine_failures, none_is_502) {
  auto c = combine_failures({});
  EXPECT_EQ(c.status, 502);
  EXPECT_EQ(c.type, "provider_error");
}

} // namespace
} // namespace emr

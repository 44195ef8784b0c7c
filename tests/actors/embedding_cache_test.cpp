// The embedding cache alone: its keys, its byte bound, its LRU order and its time to live.

#include "actors/embedding_cache.hpp"

#include <gtest/gtest.h>

namespace emr::embedding_cache_tests {

using namespace std::chrono_literals;

cache_key key_of(const std::string& text) {
  return make_cache_key("scope", "model", "document", 0, text);
}

std::vector<float> row(float value, std::size_t dims) {
  return std::vector<float>(dims, value);
}

TEST(embedding_cache, a_key_covers_every_part_and_no_two_tuples_encode_alike) {
  auto base = make_cache_key("scope", "model", "document", 0, "text");
  EXPECT_EQ(base, make_cache_key("scope", "model", "document", 0, "text"));
  EXPECT_NE(base, make_cache_key("scope2", "model", "document", 0, "text"));
  EXPECT_NE(base, make_cache_key("scope", "model2", "document", 0, "text"));
  EXPECT_NE(base, make_cache_key("scope", "model", "query", 0, "text"));
  EXPECT_NE(base, make_cache_key("scope", "model", "document", 256, "text"));
  EXPECT_NE(base, make_cache_key("scope", "model", "document", 0, "text "));
  // Moving a byte from one field to the next changes the key: every field is length-prefixed.
  EXPECT_NE(make_cache_key("scope", "ab", "c", 0, "text"),
            make_cache_key("scope", "a", "bc", 0, "text"));
  provider_spec spec;
  spec.name = "voyage";
  spec.endpoint = "http://127.0.0.1:1/v1/embeddings";
  spec.model = "m";
  auto moved = spec;
  moved.endpoint = "http://127.0.0.1:2/v1/embeddings";
  auto renamed = spec;
  renamed.name = "voyage-2";
  EXPECT_NE(cache_scope(spec), cache_scope(moved));
  EXPECT_EQ(cache_scope(spec), cache_scope(renamed)) << "the same endpoint gives the same vectors";
}

TEST(embedding_cache, a_stored_row_comes_back_bit_identical_with_its_tokens) {
  embedding_cache cache{{1 << 20, 60s}};
  clock_time now{};
  std::vector<float> values{0.1f, -2.5e-7f, 3.0f};
  cache.store(key_of("a"), values.data(), values.size(), 4, now);
  auto hit = cache.find(key_of("a"), now + 1s);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->tokens, 4);
  ASSERT_EQ(hit->vector->dims, 3u);
  EXPECT_EQ(std::vector<float>(hit->vector->row(0), hit->vector->row(0) + 3), values);
  EXPECT_FALSE(cache.find(key_of("b"), now));
  auto s = cache.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.bytes, embedding_cache::bookkeeping_bytes() + embedding_cache::slab_bytes(1 << 20, 3))
      << "one entry and the slab its slot is in";
}

TEST(embedding_cache, a_found_vector_is_the_callers_own_copy) {
  // One slot a shard: every store into the shard reuses the slot of the vector it evicts.
  constexpr std::size_t dims = 1024;
  embedding_cache cache{
      {16 * (embedding_cache::bookkeeping_bytes() + allocated_bytes(dims * sizeof(float))), 60s}};
  clock_time now{};
  auto first = row(1, dims);
  cache.store(key_of("a"), first.data(), dims, 1, now);
  auto hit = cache.find(key_of("a"), now);
  ASSERT_TRUE(hit);
  auto shard_mate = key_of("a");
  for (int i = 0; shard_mate.back() % 16 != key_of("a").back() % 16 || i == 0; ++i)
    shard_mate = key_of("other " + std::to_string(i));
  auto second = row(2, dims);
  cache.store(shard_mate, second.data(), dims, 1, now);
  EXPECT_FALSE(cache.find(key_of("a"), now)) << "evicted: its slot now holds the other vector";
  EXPECT_EQ(hit->vector->values, first) << "the answer already given is unchanged";
}

TEST(embedding_cache, the_byte_bound_holds_and_the_least_recently_used_go_first) {
  constexpr std::size_t dims = 256;
  // Room for exactly four entries in each of the 16 shards: one slab of four slots.
  const std::size_t slab = allocated_bytes(4 * dims * sizeof(float));
  const std::size_t bound = 16 * (slab + 4 * embedding_cache::bookkeeping_bytes());
  embedding_cache cache{{bound, 3600s}};
  clock_time now{};
  auto values = row(1, dims);
  for (int i = 0; i < 2000; ++i) {
    cache.store(key_of("text " + std::to_string(i)), values.data(), dims, 1, now);
    ASSERT_LE(cache.stats().bytes, bound);
    // Text 0 is asked for after every store: it stays the most recently used, and is never evicted.
    ASSERT_TRUE(cache.find(key_of("text 0"), now)) << "after " << i;
  }
  auto s = cache.stats();
  EXPECT_EQ(s.entries * embedding_cache::bookkeeping_bytes() + 16 * slab, s.bytes);
  EXPECT_LE(s.entries, 64u);
  EXPECT_GE(s.entries, 48u) << "the shards fill about evenly";
  EXPECT_EQ(s.stored, 2000u);
  EXPECT_EQ(s.evicted, 2000u - s.entries);
  EXPECT_FALSE(cache.find(key_of("text 1"), now)) << "the oldest untouched entry went";
  EXPECT_EQ(cache.clear(), s.entries);
  EXPECT_EQ(cache.stats().bytes, 0u);
  EXPECT_FALSE(cache.find(key_of("text 0"), now));
}

TEST(embedding_cache, an_entry_past_its_time_to_live_is_a_miss_and_is_dropped) {
  embedding_cache cache{{1 << 20, 10s}};
  clock_time now{};
  auto values = row(2, 4);
  cache.store(key_of("a"), values.data(), 4, 1, now);
  EXPECT_TRUE(cache.find(key_of("a"), now + 9s));
  EXPECT_FALSE(cache.find(key_of("a"), now + 10s));
  auto s = cache.stats();
  EXPECT_EQ(s.expired, 1u);
  EXPECT_EQ(s.entries, 0u);
  EXPECT_EQ(s.bytes, 0u);
}

TEST(embedding_cache, a_zero_bound_keeps_nothing) {
  embedding_cache cache{{0, 10s}};
  auto values = row(2, 4);
  cache.store(key_of("a"), values.data(), 4, 1, clock_time{});
  EXPECT_FALSE(cache.enabled());
  EXPECT_FALSE(cache.find(key_of("a"), clock_time{}));
  EXPECT_EQ(cache.stats().entries, 0u);
}

} // namespace emr::embedding_cache_tests

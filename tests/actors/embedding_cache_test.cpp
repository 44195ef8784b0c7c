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
  prepared_blocks blocks{0, false};
  vector_slabs shard{(1 << 20) / 16, embedding_cache::bookkeeping_bytes(), blocks};
  EXPECT_EQ(s.bytes, embedding_cache::bookkeeping_bytes() + shard.next_slab_bytes(3))
      << "one entry and the slab its slot is in";
}

TEST(embedding_cache, the_byte_bound_holds_and_the_least_recently_used_go_first) {
  constexpr std::size_t dims = 256;
  // Room for four entries in each of the 16 shards: one slab of four slots.
  const std::size_t bound = 16 * (slab_bytes(4, dims) + 4 * embedding_cache::bookkeeping_bytes());
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
  EXPECT_LE(s.entries, 64u);
  EXPECT_GE(s.entries, 32u) << "the shards fill about evenly";
  EXPECT_EQ(s.stored, 2000u);
  EXPECT_EQ(s.evicted, 2000u - s.entries);
  EXPECT_FALSE(cache.find(key_of("text 1"), now)) << "the oldest untouched entry went";
  EXPECT_EQ(cache.clear(), s.entries);
  EXPECT_EQ(cache.stats().bytes, 0u);
  EXPECT_FALSE(cache.find(key_of("text 0"), now));
}

TEST(embedding_cache, a_vector_of_a_new_size_takes_down_a_slab_of_others_not_a_shard) {
  // 2 MiB a shard: about 480 vectors of 1,024 floats, in slabs of at most 64.
  embedding_cache cache{{32 << 20, 3600s}};
  clock_time now{};
  auto common = row(1, 1024);
  for (int i = 0; i < 16 * 600; ++i)
    cache.store(key_of("common " + std::to_string(i)), common.data(), common.size(), 1, now);
  ASSERT_GT(cache.stats().evicted, 0u) << "every shard is full";
  // A caller varying `dimensions`: each size needs a slab of its own.
  std::uint64_t most = 0, total = 0;
  for (std::size_t dims = 1100; dims < 1200; ++dims) {
    auto before = cache.stats().evicted;
    auto rare = row(2, dims);
    cache.store(key_of("rare " + std::to_string(dims)), rare.data(), dims, 1, now);
    ASSERT_TRUE(cache.find(key_of("rare " + std::to_string(dims)), now));
    auto evicted = cache.stats().evicted - before;
    most = std::max(most, evicted);
    total += evicted;
    ASSERT_LE(cache.stats().bytes, 32u << 20);
  }
  EXPECT_GT(total, 0u) << "the shards had to make room";
  EXPECT_LE(most, 64u) << "one slab's vectors at most for each, not most of a shard";
  EXPECT_GE(cache.stats().entries, 16u * 300) << "most of the common vectors are still there";
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

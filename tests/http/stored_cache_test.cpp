// stored_cache on a real SQLite file with injected clocks: what one memory cache stores reaches
// the store when saved, and another memory cache (a restarted emr, another replica) reads it back
// for the texts it lacks, bit-identical and expiring when the first would have.

#include "http/stored_cache.hpp"
#include "storage/sqlite_store.hpp"
#include "tests/http/manual_clock.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace emr::stored_cache_tests {

namespace fs = std::filesystem;

struct stored_cache_test : ::testing::Test {
  fs::path directory;
  std::unique_ptr<sqlite_store> db;
  testing::manual_clock clock;
  std::int64_t unix_seconds = 1'800'000'000;
  cache_settings settings{1 << 20, std::chrono::seconds{100}, 50};
  provider_route route;

  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "emr_stored_cache_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    directory = pattern;
    db = std::make_unique<sqlite_store>(directory / "emr.db");
    route.model = "voyage-3.5";
    route.cache_scope = "6:voyage22:http://127.0.0.1:1/v1";
  }
  void TearDown() override {
    db.reset();
    fs::remove_all(directory);
  }
  std::unique_ptr<stored_cache> tier(embedding_cache& memory, std::size_t max_entries = 50) {
    return std::make_unique<stored_cache>(*db, memory, max_entries, clock.function(),
                                          [this] { return unix_seconds; });
  }
  cache_key key(const std::string& text) const {
    return make_cache_key(route.cache_scope, route.model, "document", 0, text);
  }
  static std::vector<float> vector_of(const std::string& text) {
    // Values whose bits a decimal round trip would not keep.
    return {static_cast<float>(text.size()) / 3, -1.0f / 7, 1e-38f};
  }
  void embedded(embedding_cache& memory, const std::string& text, std::int64_t tokens) {
    auto v = vector_of(text);
    memory.store(key(text), v.data(), v.size(), tokens, *clock.now);
  }
  caller_job job(std::vector<std::string> texts, bool read = true) const {
    caller_job j;
    j.texts = std::move(texts);
    j.input_type = "document";
    j.routes = {route};
    j.cache.read = read;
    return j;
  }
};

TEST_F(stored_cache_test, another_memory_cache_reads_back_what_one_saved) {
  embedding_cache first{settings};
  auto first_tier = tier(first);
  embedded(first, "alpha", 3);
  embedded(first, "beta", 4);
  first_tier->save();
  EXPECT_EQ(first_tier->entries(), 2);
  EXPECT_EQ(first.stats().saved, 2u);

  // A restart, 30 s later: memory is empty, the store is not.
  clock.advance(std::chrono::hours{5});
  unix_seconds += 30;
  embedding_cache second{settings};
  auto second_tier = tier(second);
  EXPECT_FALSE(second.holds(key("alpha"), *clock.now));
  second_tier->warm({job({"gamma"}, true), job({"alpha"}, false)});
  EXPECT_FALSE(second.holds(key("alpha"), *clock.now)) << "its job may not read the cache";
  second_tier->warm({job({"alpha", "gamma", "beta", "alpha"})});
  auto alpha = second.find(key("alpha"), *clock.now);
  ASSERT_TRUE(alpha);
  EXPECT_EQ(alpha->vector->values, vector_of("alpha")) << "bit-identical";
  EXPECT_EQ(alpha->tokens, 3);
  EXPECT_EQ(second.find(key("beta"), *clock.now)->tokens, 4);
  EXPECT_FALSE(second.holds(key("gamma"), *clock.now));
  auto stats = second.stats();
  EXPECT_EQ(stats.restored, 2u);
  EXPECT_EQ(stats.saved, 0u) << "what was read back is not written again";
  second_tier->save();
  EXPECT_EQ(second.stats().saved, 0u);

  // Stored at unix T with a 100 s TTL, read back at T + 30: 70 s left.
  clock.advance(std::chrono::seconds{69});
  EXPECT_TRUE(second.holds(key("alpha"), *clock.now));
  clock.advance(std::chrono::seconds{2});
  EXPECT_FALSE(second.holds(key("alpha"), *clock.now));
  unix_seconds += 71;
  second.clear();
  second_tier->warm({job({"alpha"})});
  EXPECT_FALSE(second.holds(key("alpha"), *clock.now)) << "expired in the store too";
}

TEST_F(stored_cache_test, what_is_left_is_written_at_shutdown_and_the_store_keeps_its_bound) {
  embedding_cache memory{settings};
  auto stored = tier(memory, 2);
  embedded(memory, "one", 1);
  stored->save(); // the first save trims too
  embedded(memory, "two", 1);
  embedded(memory, "three", 1);
  stored.reset();
  EXPECT_EQ(db->cached_vector_count(), 3) << "written when the tier stopped";
  stored = tier(memory, 2);
  unix_seconds += 1;
  embedded(memory, "four", 1);
  stored->save();
  EXPECT_EQ(db->cached_vector_count(), 2) << "trimmed to the bound, oldest first";
  EXPECT_EQ(db->cached_vectors({}, 0).size(), 0u);
  EXPECT_EQ(stored->clear(), 2);
}

} // namespace emr::stored_cache_tests

// stored_cache on a real SQLite file with injected clocks: what one memory cache stores reaches
// the store when saved, and another memory cache (a restarted emr, another replica) reads it back
// for the texts it lacks, bit-identical and expiring when the first would have.

#include "http/stored_cache.hpp"
#include "storage/migrations.hpp"
#include "storage/sqlite_store.hpp"
#include "tests/http/manual_clock.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <sqlite3.h>

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
    // Saved by hand only: the background saver would race the hand-moved clocks.
    return std::make_unique<stored_cache>(*db, memory, max_entries, std::chrono::hours{24},
                                          clock.function(), [this] { return unix_seconds; });
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
  // The store fails every cached-vector query while the table is gone.
  void break_the_store() const { sql("DROP TABLE cached_vectors"); }
  void mend_the_store() const { sql(std::string{migrations[4].sqlite}); }
  void sql(const std::string& statement) const {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open((directory / "emr.db").c_str(), &raw), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(raw, statement.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(raw);
    sqlite3_close(raw);
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
  stored->save(); // a new tier's first save trims
  EXPECT_EQ(db->cached_vector_count(), 2) << "trimmed to the bound, oldest first";
  EXPECT_EQ(db->cached_vectors({}, 0).size(), 0u);
  EXPECT_EQ(stored->clear(), 2);
}

TEST_F(stored_cache_test, a_failing_store_leaves_texts_to_go_upstream_and_is_left_alone_a_while) {
  embedding_cache memory{settings};
  auto stored = tier(memory);
  break_the_store();
  stored->warm({job({"alpha"})});
  EXPECT_FALSE(memory.holds(key("alpha"), *clock.now));
  EXPECT_EQ(memory.stats().store_errors, 1u);
  embedded(memory, "beta", 1);
  stored->save();
  auto stats = memory.stats();
  EXPECT_EQ(stats.store_errors, 1u) << "quiet: not even tried";
  EXPECT_EQ(stats.unsaved_dropped, 1u) << "its copy in the store is lost, and counted";
  EXPECT_TRUE(memory.holds(key("beta"), *clock.now)) << "memory keeps it";

  mend_the_store();
  auto alpha = vector_of("alpha");
  auto stored_alpha = make_cache_key(route.cache_scope, route.model, "document", 0, "alpha");
  std::string hex;
  for (auto byte : stored_alpha)
    hex += fmt::format("{:02x}", byte);
  db->put_cached_vectors({{hex, alpha, 1, unix_seconds + 100}});
  clock.advance(stored_cache::quiet_after_failure - std::chrono::seconds{1});
  stored->warm({job({"alpha"})});
  EXPECT_FALSE(memory.holds(key("alpha"), *clock.now)) << "still quiet";
  clock.advance(std::chrono::seconds{1});
  stored->warm({job({"alpha"})});
  EXPECT_TRUE(memory.holds(key("alpha"), *clock.now)) << "asked again once the quiet is over";
  EXPECT_EQ(memory.stats().store_errors, 1u);
}

TEST_F(stored_cache_test, an_any_job_warms_its_first_route_and_an_all_job_every_route) {
  embedding_cache first{settings};
  auto first_tier = tier(first);
  auto other = route;
  other.cache_scope = "6:cohere22:http://127.0.0.1:2/v1";
  auto v = vector_of("shared");
  for (const auto& r : {route, other})
    first.store(make_cache_key(r.cache_scope, r.model, "document", 0, "shared"), v.data(), v.size(),
                1, *clock.now);
  first_tier->save();

  embedding_cache second{settings};
  auto second_tier = tier(second);
  auto fallback = make_cache_key(other.cache_scope, other.model, "document", 0, "shared");
  auto j = job({"shared"});
  j.routes = {route, other};
  second_tier->warm({j});
  EXPECT_TRUE(second.holds(key("shared"), *clock.now));
  EXPECT_FALSE(second.holds(fallback, *clock.now)) << "a fallback is read only if it is tried";
  j.policy = routing_policy::all;
  second_tier->warm({j});
  EXPECT_TRUE(second.holds(fallback, *clock.now));
}

TEST_F(stored_cache_test, vectors_waiting_for_the_store_are_bounded_and_a_clear_drops_them) {
  embedding_cache memory{settings};
  auto stored = tier(memory);
  // An eighth of the 1 MiB bound waits at most: 31 vectors of 1,024 floats and their records.
  std::vector<float> big(1024, 0.5f);
  for (int i = 0; i < 40; ++i)
    memory.store(key("big " + std::to_string(i)), big.data(), big.size(), 1, *clock.now);
  auto per_vector = allocated_bytes(big.size() * sizeof(float)) + sizeof(unsaved_vector);
  auto fit = memory.max_unsaved_bytes() / per_vector;
  EXPECT_EQ(memory.stats().unsaved_dropped, 40 - fit);
  stored->save();
  EXPECT_EQ(db->cached_vector_count(), static_cast<std::int64_t>(fit));
  embedded(memory, "cleared before it was saved", 1);
  EXPECT_EQ(stored->clear(), static_cast<std::int64_t>(fit));
  stored->save();
  EXPECT_EQ(db->cached_vector_count(), 0) << "nothing cleared comes back";
}

} // namespace emr::stored_cache_tests

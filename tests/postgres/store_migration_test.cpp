// postgres_store::import, the heart of `emr store migrate`: a SQLite store's records arrive in
// PostgreSQL verbatim (ids, hashes, times, revocations), new keys are numbered after them, and a
// database that already holds records is refused without a change.

#include "storage/postgres_store.hpp"
#include "storage/sqlite_store.hpp"
#include "tests/postgres/cluster.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

namespace emr {
namespace {

namespace fs = std::filesystem;

struct store_migration : ::testing::Test {
  void SetUp() override {
    ASSERT_EQ(database.error(), "");
    dir = fs::temp_directory_path() / ("emr_migration_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    source = std::make_unique<sqlite_store>(dir / "emr.db");
  }
  void TearDown() override {
    source.reset();
    fs::remove_all(dir);
  }

  provider_record provider(const std::string& name, bool enabled) {
    provider_record p;
    p.name = name;
    p.type = "openai";
    p.endpoint = "http://127.0.0.1:9/v1/embeddings";
    p.model = "text-embedding-3-small";
    p.api_key_env = "OPENAI_API_KEY";
    p.enabled = enabled;
    p.requests_per_minute = 3000;
    return p;
  }

  testing::postgres_database database;
  fs::path dir;
  std::unique_ptr<sqlite_store> source;
};

TEST_F(store_migration, every_record_arrives_verbatim_and_new_keys_follow_them) {
  ASSERT_TRUE(source->add_provider(provider("a", true)));
  ASSERT_TRUE(source->add_provider(provider("b", false)));
  auto kept = source->create_key("kept", "pub_kept", "$argon2id$kept");
  auto gone = source->create_key("gone", "pub_gone", "$argon2id$gone");
  auto rotated = source->rotate_key(gone.id, "pub_rotated", "$argon2id$rotated");
  ASSERT_TRUE(rotated);
  source->touch_keys({{kept.id, 1'700'000'123}});

  postgres_store target{database.url()};
  target.import(source->providers(), source->keys());
  EXPECT_EQ(target.providers(), source->providers());
  EXPECT_EQ(target.keys(), source->keys());
  EXPECT_EQ(target.key(kept.id)->last_used_at, 1'700'000'123);
  EXPECT_TRUE(target.key(gone.id)->revoked_at);
  EXPECT_FALSE(target.key(rotated->id)->last_used_at);
  auto next = target.create_key("new", "pub_new", "$argon2id$new");
  EXPECT_EQ(next.id, rotated->id + 1) << "numbered after the copied keys";
}

TEST_F(store_migration, a_database_that_holds_records_is_refused_without_a_change) {
  ASSERT_TRUE(source->add_provider(provider("a", true)));
  source->create_key("k", "pub_k", "h");
  postgres_store target{database.url()};
  target.create_key("already", "pub_already", "h");
  EXPECT_THROW(target.import(source->providers(), source->keys()), storage_error);
  EXPECT_TRUE(target.providers().empty());
  ASSERT_EQ(target.keys().size(), 1u);
  EXPECT_EQ(target.keys()[0].name, "already");
}

} // namespace
} // namespace emr

// sqlite_store: CRUD, key lifecycle, hostile names, durability, file modes and schema health.

#include "storage/sqlite_store.hpp"

#include "storage/migrations.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace emr {
namespace {

namespace fs = std::filesystem;

mode_t permission_bits(const fs::path& file) {
  struct stat st {};
  EXPECT_EQ(::stat(file.c_str(), &st), 0) << file;
  return st.st_mode & 0777;
}

/// Runs one query on the file through a connection of its own, bypassing sqlite_store.
std::string raw_query(const fs::path& file, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  std::string result;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK) {
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
      result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  } else {
    ADD_FAILURE() << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
}

/// Runs statements on the file through a connection of its own, bypassing sqlite_store.
void raw_execute(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
            SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

/// How many POSIX locks this process holds on the file, as the kernel lists them in /proc/locks.
int locks_held_on(const fs::path& file) {
  struct stat st {};
  EXPECT_EQ(::stat(file.c_str(), &st), 0) << file;
  std::ifstream locks{"/proc/locks"};
  int held = 0;
  // "1: POSIX  ADVISORY  READ 1234 08:01:5678 1073741826 1073742335"
  for (std::string line; std::getline(locks, line);) {
    std::istringstream fields{line};
    std::string number, kind, advisory, access, pid, device_and_inode;
    fields >> number >> kind >> advisory >> access >> pid >> device_and_inode;
    auto inode = device_and_inode.substr(device_and_inode.rfind(':') + 1);
    if (kind == "POSIX" && pid == std::to_string(::getpid()) && inode == std::to_string(st.st_ino))
      ++held;
  }
  return held;
}

provider_record sample_provider(std::string name) {
  provider_record p;
  p.name = std::move(name);
  p.type = "voyage";
  p.endpoint = "https://api.voyageai.com/v1/embeddings";
  p.model = "voyage-3";
  p.api_key_env = "VOYAGE_API_KEY";
  p.max_batch = 64;
  p.enabled = true;
  p.created_at = 1700000000;
  return p;
}

class sqlite_store_test : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "emr_store_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    directory = pattern;
    database_file = directory / "state" / "emr.db";
  }
  void TearDown() override { fs::remove_all(directory); }

  fs::path directory;
  fs::path database_file;
};

// -- usage --------------------------------------------------------------------

TEST_F(sqlite_store_test, a_key_is_created_with_its_limits_in_one_write) {
  sqlite_store db{database_file};
  auto limited = db.create_key("limited", "pub_l", "h", key_limits{5, 600, 10'000});
  EXPECT_EQ(limited.limits, (key_limits{5, 600, 10'000}));
  EXPECT_EQ(db.key(limited.id)->limits, limited.limits);
  EXPECT_EQ(db.create_key("free", "pub_f", "h").limits, key_limits{});
}

TEST_F(sqlite_store_test, key_usage_adds_up_per_key_and_day) {
  sqlite_store db{database_file};
  auto a = db.create_key("a", "pub_a", "h");
  auto b = db.create_key("b", "pub_b", "h");
  db.add_key_usage({{a.id, 20000, 1, 3, 12, 2, 0.25, 1, 0}, {b.id, 20000, 1, 1, 4, 1, 1.0, 0, 1}});
  db.add_key_usage({{a.id, 20000, 2, 5, 20, 5, 0.5, 0, 1}, {a.id, 20001, 1, 1, 4, 0, 0, 1, 0}});
  db.add_key_usage({});
  EXPECT_EQ(db.key_usage(a.id, 0),
            (std::vector<key_usage_row>{{a.id, 20000, 3, 8, 32, 7, 0.75, 1, 1},
                                        {a.id, 20001, 1, 1, 4, 0, 0, 1, 0}}));
  EXPECT_EQ(db.key_usage(a.id, 20001).size(), 1u);
  EXPECT_EQ(db.key_usage(b.id, 0).front().errors, 1);
  EXPECT_TRUE(db.key_usage(12345, 0).empty());
  sqlite_store reopened{database_file};
  EXPECT_EQ(reopened.key_usage(a.id, 0).front().tokens, 32) << "on disk";
}

// -- embedding cache ----------------------------------------------------------

TEST_F(sqlite_store_test, cached_vectors_come_back_bit_identical_until_they_expire_or_are_trimmed) {
  sqlite_store db{database_file};
  // Values whose bits a text round trip would not keep.
  std::vector<float> exact{0.1f, -1.0f / 3, 1e-38f, std::nextafter(1.0f, 2.0f)};
  std::vector<stored_vector> kept;
  for (int i = 0; i < 5; ++i)
    kept.push_back({fmt::format("{:064x}", i), exact, 10 + i, 1000 + i});
  db.put_cached_vectors(kept);
  db.put_cached_vectors({});
  EXPECT_EQ(db.cached_vector_count(), 5);
  auto found = db.cached_vectors({kept[1].key, "missing", kept[3].key}, 999);
  std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.key < b.key; });
  EXPECT_EQ(found, (std::vector<stored_vector>{kept[1], kept[3]}));
  EXPECT_TRUE(db.cached_vectors({kept[1].key}, 1001).empty()) << "expired at 1001";
  // A vector kept again replaces the old one.
  auto newer = kept[4];
  newer.values = {2.0f};
  newer.expires_at = 5000;
  db.put_cached_vectors({newer});
  EXPECT_EQ(db.cached_vectors({newer.key}, 4999), std::vector<stored_vector>{newer});
  // Expired first (kept[0] and kept[1]), then the closest to expiring down to the bound.
  EXPECT_EQ(db.trim_cached_vectors(1001, 2), 3);
  EXPECT_EQ(db.cached_vector_count(), 2);
  EXPECT_EQ(db.cached_vectors({kept[3].key, newer.key}, 0).size(), 2u) << "the latest to expire";
  EXPECT_EQ(db.trim_cached_vectors(0, 10), 0);
  sqlite_store reopened{database_file};
  EXPECT_EQ(reopened.cached_vector_count(), 2) << "on disk";
  EXPECT_EQ(reopened.clear_cached_vectors(), 2);
  EXPECT_EQ(reopened.cached_vector_count(), 0);
}

// -- providers ----------------------------------------------------------------

TEST_F(sqlite_store_test, provider_crud_round_trips) {
  sqlite_store store(database_file);
  auto voyage = sample_provider("voyage-main");
  voyage.requests_per_minute = 2000;
  voyage.tokens_per_minute = 3'000'000;
  auto cohere = sample_provider("cohere-eu");
  cohere.type = "cohere";
  cohere.enabled = false;
  cohere.max_batch = 0;
  ASSERT_TRUE(store.add_provider(voyage));
  ASSERT_TRUE(store.add_provider(cohere));

  EXPECT_EQ(store.provider("voyage-main"), voyage);
  EXPECT_EQ(store.provider("cohere-eu"), cohere);
  EXPECT_EQ(store.provider("absent"), std::nullopt);
  EXPECT_EQ(store.providers(), (std::vector<provider_record>{cohere, voyage})); // by name

  auto changed = voyage;
  changed.endpoint = "http://127.0.0.1:9999/v1/embeddings";
  changed.model = "voyage-3-lite";
  changed.api_key_env = "OTHER_KEY";
  changed.max_batch = 8;
  changed.enabled = false;
  changed.type = "openai_compatible";
  changed.requests_per_minute = 0;
  changed.tokens_per_minute = 10'000'000'000;
  EXPECT_TRUE(store.update_provider(changed));
  EXPECT_EQ(store.provider("voyage-main"), changed);

  EXPECT_TRUE(store.remove_provider("voyage-main"));
  EXPECT_EQ(store.provider("voyage-main"), std::nullopt);
  EXPECT_FALSE(store.remove_provider("voyage-main"));
  EXPECT_EQ(store.providers(), std::vector<provider_record>{cohere});
}

TEST_F(sqlite_store_test, duplicate_provider_name_is_refused_and_keeps_the_original) {
  sqlite_store store(database_file);
  auto original = sample_provider("dup");
  ASSERT_TRUE(store.add_provider(original));
  auto second = sample_provider("dup");
  second.model = "other-model";
  EXPECT_FALSE(store.add_provider(second));
  EXPECT_EQ(store.provider("dup"), original);
  EXPECT_EQ(store.providers().size(), 1u);
}

TEST_F(sqlite_store_test, update_of_absent_provider_reports_false_and_creates_nothing) {
  sqlite_store store(database_file);
  EXPECT_FALSE(store.update_provider(sample_provider("ghost")));
  EXPECT_TRUE(store.providers().empty());
}

TEST_F(sqlite_store_test, update_keeps_created_at) {
  sqlite_store store(database_file);
  auto p = sample_provider("p");
  ASSERT_TRUE(store.add_provider(p));
  auto changed = p;
  changed.created_at = 42;
  changed.model = "m2";
  ASSERT_TRUE(store.update_provider(changed));
  EXPECT_EQ(store.provider("p")->created_at, p.created_at);
  EXPECT_EQ(store.provider("p")->model, "m2");
}

TEST_F(sqlite_store_test, negative_rate_limits_are_refused_by_the_schema) {
  sqlite_store store(database_file);
  auto p = sample_provider("p");
  p.requests_per_minute = -1;
  EXPECT_THROW(store.add_provider(p), storage_error);
  p.requests_per_minute = 0;
  ASSERT_TRUE(store.add_provider(p));
  p.tokens_per_minute = -5;
  EXPECT_THROW(store.update_provider(p), storage_error);
  EXPECT_EQ(store.provider("p"), sample_provider("p"));
}

TEST_F(sqlite_store_test, provider_without_created_at_is_stamped_now) {
  sqlite_store store(database_file);
  auto p = sample_provider("fresh");
  p.created_at = 0;
  auto before = unix_now();
  ASSERT_TRUE(store.add_provider(p));
  auto stamped = store.provider("fresh")->created_at;
  EXPECT_GE(stamped, before);
  EXPECT_LE(stamped, unix_now());
}

TEST_F(sqlite_store_test, empty_strings_are_stored_as_empty_not_null) {
  sqlite_store store(database_file);
  provider_record p;
  p.name = "bare";
  p.created_at = 1;
  ASSERT_TRUE(store.add_provider(p));
  EXPECT_EQ(store.provider("bare"), p);
  // A default string_view has a null data pointer, which SQLite would bind as NULL.
  auto k = store.create_key(std::string_view{}, "E000000000000000", std::string_view{});
  EXPECT_EQ(store.key(k.id)->name, "");
  EXPECT_EQ(store.key(k.id)->secret_hash, "");
}

// -- hostile names ------------------------------------------------------------

TEST_F(sqlite_store_test, names_with_sql_metacharacters_round_trip_verbatim) {
  const std::vector<std::string> names = {
      "'; DROP TABLE providers; --",  "x'); DROP TABLE caller_keys; --",
      "quote\"double'single`back",    "semi;colon;;",
      std::string("nul\0inside", 10), "percent%_underscore\\backslash",
      "unicode \xC3\xA9\xE2\x9C\x93",
  };
  sqlite_store store(database_file);
  for (const auto& name : names) {
    auto p = sample_provider(name);
    p.endpoint = name;
    p.model = name;
    p.api_key_env = name;
    ASSERT_TRUE(store.add_provider(p)) << name;
    auto stored = store.provider(name);
    ASSERT_TRUE(stored) << name;
    EXPECT_EQ(*stored, p);
    auto key = store.create_key(name, "pub" + std::to_string(&name - names.data()), name);
    EXPECT_EQ(store.key(key.id)->name, name);
    EXPECT_EQ(store.key(key.id)->secret_hash, name);
  }
  // A LIKE-style or truncated match would find one of the others.
  EXPECT_EQ(store.provider("semi"), std::nullopt);
  EXPECT_EQ(store.provider("nul"), std::nullopt);
  EXPECT_EQ(store.providers().size(), names.size());
  EXPECT_EQ(store.keys().size(), names.size());
  EXPECT_EQ(store.integrity_check(), "ok");
  for (const auto& name : names)
    EXPECT_TRUE(store.remove_provider(name)) << name;
  EXPECT_TRUE(store.providers().empty());
}

// -- caller keys ----------------------------------------------------------------

TEST_F(sqlite_store_test, create_key_fills_id_and_created_at_and_reads_back) {
  sqlite_store store(database_file);
  auto before = unix_now();
  auto a = store.create_key("app-a", "AAAAAAAAAAAAAAAA", "$argon2id$hash-a");
  auto b = store.create_key("app-b", "BBBBBBBBBBBBBBBB", "$argon2id$hash-b");
  EXPECT_GT(a.id, 0);
  EXPECT_GT(b.id, a.id);
  EXPECT_GE(a.created_at, before);
  EXPECT_LE(a.created_at, unix_now());
  EXPECT_EQ(a.name, "app-a");
  EXPECT_EQ(a.public_id, "AAAAAAAAAAAAAAAA");
  EXPECT_EQ(a.secret_hash, "$argon2id$hash-a");
  EXPECT_EQ(a.last_used_at, std::nullopt);
  EXPECT_EQ(a.revoked_at, std::nullopt);

  EXPECT_EQ(store.key(a.id), a);
  EXPECT_EQ(store.key_by_public_id("BBBBBBBBBBBBBBBB"), b);
  EXPECT_EQ(store.key(9999), std::nullopt);
  EXPECT_EQ(store.key_by_public_id("nope"), std::nullopt);
  EXPECT_EQ(store.keys(), (std::vector<key_record>{a, b}));
}

TEST_F(sqlite_store_test, duplicate_public_id_throws_storage_error) {
  sqlite_store store(database_file);
  store.create_key("a", "SAMEPUBLICID0000", "h1");
  EXPECT_THROW(store.create_key("b", "SAMEPUBLICID0000", "h2"), storage_error);
  EXPECT_EQ(store.keys().size(), 1u);
}

TEST_F(sqlite_store_test, revoke_marks_once_and_reports_absent_or_repeated) {
  sqlite_store store(database_file);
  auto k = store.create_key("app", "P000000000000000", "h");
  auto other = store.create_key("other", "P000000000000001", "h");
  auto before = unix_now();
  EXPECT_TRUE(store.revoke_key(k.id));
  auto revoked = store.key(k.id);
  ASSERT_TRUE(revoked->revoked_at);
  EXPECT_GE(*revoked->revoked_at, before);
  EXPECT_FALSE(store.revoke_key(k.id));
  EXPECT_EQ(store.key(k.id)->revoked_at, revoked->revoked_at);
  EXPECT_FALSE(store.revoke_key(4242));
  EXPECT_EQ(store.key(other.id)->revoked_at, std::nullopt);
  EXPECT_TRUE(store.key_by_public_id("P000000000000000")->revoked_at); // still findable
}

TEST_F(sqlite_store_test, rotate_revokes_old_and_creates_new_with_same_name) {
  sqlite_store store(database_file);
  auto old_key = store.create_key("billing", "OLD0000000000000", "old-hash");
  auto new_key = store.rotate_key(old_key.id, "NEW0000000000000", "new-hash");
  ASSERT_TRUE(new_key);
  EXPECT_NE(new_key->id, old_key.id);
  EXPECT_EQ(new_key->name, "billing");
  EXPECT_EQ(new_key->public_id, "NEW0000000000000");
  EXPECT_EQ(new_key->secret_hash, "new-hash");
  EXPECT_EQ(new_key->revoked_at, std::nullopt);
  EXPECT_EQ(store.key(new_key->id), new_key);
  EXPECT_TRUE(store.key(old_key.id)->revoked_at);
}

TEST_F(sqlite_store_test, rotate_of_absent_or_revoked_key_changes_nothing) {
  sqlite_store store(database_file);
  auto k = store.create_key("app", "K000000000000000", "h");
  ASSERT_TRUE(store.revoke_key(k.id));
  EXPECT_EQ(store.rotate_key(k.id, "N000000000000000", "h2"), std::nullopt);
  EXPECT_EQ(store.rotate_key(777, "N000000000000001", "h2"), std::nullopt);
  EXPECT_EQ(store.keys().size(), 1u);
  EXPECT_EQ(store.key_by_public_id("N000000000000000"), std::nullopt);
}

TEST_F(sqlite_store_test, failed_rotate_leaves_old_key_valid) {
  sqlite_store store(database_file);
  auto old_key = store.create_key("app", "OLD0000000000000", "h");
  store.create_key("taken", "TAKEN00000000000", "h");
  // The insert half fails on the UNIQUE public_id, after the revoke half already ran.
  EXPECT_THROW(store.rotate_key(old_key.id, "TAKEN00000000000", "h2"), storage_error);
  EXPECT_EQ(store.key(old_key.id)->revoked_at, std::nullopt);
  EXPECT_EQ(store.keys().size(), 2u);
  // The connection is usable again: the failed transaction was rolled back, not left open.
  EXPECT_TRUE(store.rotate_key(old_key.id, "NEW0000000000000", "h3"));
}

TEST_F(sqlite_store_test, touch_keys_updates_last_used_and_never_moves_it_back) {
  sqlite_store store(database_file);
  auto a = store.create_key("a", "A000000000000000", "h");
  auto b = store.create_key("b", "B000000000000000", "h");
  auto c = store.create_key("c", "C000000000000000", "h");
  store.touch_keys({{a.id, 1000}, {b.id, 2000}, {9999, 3000}});
  EXPECT_EQ(store.key(a.id)->last_used_at, 1000);
  EXPECT_EQ(store.key(b.id)->last_used_at, 2000);
  EXPECT_EQ(store.key(c.id)->last_used_at, std::nullopt);
  store.touch_keys({{a.id, 1500}, {b.id, 1500}});
  EXPECT_EQ(store.key(a.id)->last_used_at, 1500);
  EXPECT_EQ(store.key(b.id)->last_used_at, 2000);
  store.touch_keys({});
}

TEST_F(sqlite_store_test, concurrent_writers_all_land) {
  sqlite_store store(database_file);
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&store, t] {
      for (int i = 0; i < 25; ++i)
        store.create_key("w", "T" + std::to_string(t) + "_" + std::to_string(i), "h");
    });
  for (auto& w : writers)
    w.join();
  EXPECT_EQ(store.keys().size(), 100u);
}

// -- durability and files -----------------------------------------------------

TEST_F(sqlite_store_test, data_survives_close_and_reopen) {
  key_record k;
  {
    sqlite_store store(database_file);
    ASSERT_TRUE(store.add_provider(sample_provider("kept")));
    k = store.create_key("kept-key", "KEPT000000000000", "h");
    store.touch_keys({{k.id, 1234}});
    k.last_used_at = 1234;
  }
  sqlite_store reopened(database_file);
  EXPECT_EQ(reopened.provider("kept"), sample_provider("kept"));
  EXPECT_EQ(reopened.key(k.id), k);
  EXPECT_EQ(reopened.schema_version(), latest_schema_version);
  EXPECT_EQ(raw_query(database_file, "SELECT count(*) FROM schema_migrations"),
            std::to_string(migrations.size()));
}

TEST_F(sqlite_store_test, acknowledged_changes_survive_a_killed_process) {
  pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    sqlite_store store(database_file);
    store.add_provider(sample_provider("before-kill"));
    ::raise(SIGKILL); // no destructor, no close, no checkpoint
    std::_Exit(1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  sqlite_store store(database_file);
  EXPECT_EQ(store.provider("before-kill"), sample_provider("before-kill"));
  EXPECT_EQ(store.integrity_check(), "ok");
}

TEST_F(sqlite_store_test, creates_parent_directory_and_owner_only_files) {
  sqlite_store store(database_file);
  store.create_key("k", "F000000000000000", "h"); // forces the WAL and shared-memory files
  EXPECT_TRUE(fs::is_directory(database_file.parent_path()));
  EXPECT_EQ(permission_bits(database_file.parent_path()), 0700u);
  EXPECT_EQ(permission_bits(database_file), 0600u);
  for (const char* suffix : {"-wal", "-shm"}) {
    fs::path side_file = database_file.string() + suffix;
    ASSERT_TRUE(fs::exists(side_file)) << side_file;
    EXPECT_EQ(permission_bits(side_file), 0600u) << side_file;
  }
}

// `emr serve` opens a second store on the file for the embedding cache. Closing any descriptor of
// a file drops every POSIX lock the process holds on it, so opening the file outside SQLite would
// cost the first connection its shared lock, and another process's `.backup` could then
// checkpoint and delete the live WAL.
TEST_F(sqlite_store_test, a_second_store_on_the_file_keeps_the_first_ones_lock) {
  sqlite_store server(database_file);
  server.create_key("k", "F000000000000000", "h");
  ASSERT_GT(locks_held_on(database_file), 0);
  sqlite_store cache(database_file);
  EXPECT_EQ(cache.cached_vector_count(), 0);
  EXPECT_GT(locks_held_on(database_file), 0);
  EXPECT_EQ(server.keys().size(), 1u);
  EXPECT_GT(locks_held_on(database_file), 0);
}

TEST_F(sqlite_store_test, narrows_an_existing_world_readable_file_to_0600) {
  fs::create_directories(database_file.parent_path());
  { sqlite_store first(database_file); }
  ASSERT_EQ(::chmod(database_file.c_str(), 0644), 0);
  sqlite_store store(database_file);
  EXPECT_EQ(permission_bits(database_file), 0600u);
}

TEST_F(sqlite_store_test, wal_mode_is_active_on_the_file) {
  sqlite_store store(database_file);
  EXPECT_EQ(raw_query(database_file, "PRAGMA journal_mode"), "wal");
}

TEST_F(sqlite_store_test, fresh_database_is_at_latest_schema_and_sound) {
  sqlite_store store(database_file);
  EXPECT_EQ(store.schema_version(), latest_schema_version);
  EXPECT_EQ(store.integrity_check(), "ok");
  EXPECT_EQ(raw_query(database_file,
                      "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                      " AND name IN ('providers', 'caller_keys', 'schema_migrations')"),
            "3");
}

/// Writes the file as the emr before rate limits (schema 1) left it, holding one provider.
void write_schema_1_store(const fs::path& file, const provider_record& p) {
  fs::create_directories(file.parent_path());
  raw_execute(file,
              "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER "
              "NOT NULL);" +
                  std::string{migrations[0].sqlite} +
                  "INSERT INTO schema_migrations VALUES (1, 1700000000);" +
                  fmt::format("INSERT INTO providers (name, type, endpoint, model, api_key_env,"
                              " max_batch, enabled, created_at) VALUES ('{}', '{}', '{}', '{}',"
                              " '{}', {}, {}, {});",
                              p.name, p.type, p.endpoint, p.model, p.api_key_env, p.max_batch,
                              p.enabled ? 1 : 0, p.created_at));
  ASSERT_EQ(raw_query(file, "SELECT max(version) FROM schema_migrations"), "1");
}

// A database written by the emr before rate limits (schema 1) upgrades in place when opened.
TEST_F(sqlite_store_test, schema_1_upgrades_keeping_its_providers_with_no_rate_limits) {
  auto expected = sample_provider("old");
  expected.enabled = false;
  expected.created_at = 1600000000;
  write_schema_1_store(database_file, expected);

  sqlite_store store(database_file);
  EXPECT_EQ(store.schema_version(), latest_schema_version);
  EXPECT_EQ(store.provider("old"), expected); // every column kept, and no limits set

  expected.requests_per_minute = 500;
  expected.tokens_per_minute = 1'000'000;
  ASSERT_TRUE(store.update_provider(expected));
  EXPECT_EQ(store.provider("old"), expected);
  EXPECT_EQ(store.integrity_check(), "ok");
}

TEST_F(sqlite_store_test, refuses_a_schema_newer_than_this_build) {
  { sqlite_store store(database_file); }
  raw_query(database_file, "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)");
  EXPECT_THROW(sqlite_store{database_file}, storage_error);
}

TEST_F(sqlite_store_test, garbage_file_throws_storage_error) {
  fs::create_directories(database_file.parent_path());
  std::ofstream(database_file) << std::string(8192, 'x');
  EXPECT_THROW(sqlite_store{database_file}, storage_error);
}

// -- read-only, as `emr store migrate` reads its source ---------------------------

std::string bytes_of(const fs::path& file) {
  std::ifstream in{file, std::ios::binary};
  return std::string{std::istreambuf_iterator<char>{in}, {}};
}

TEST_F(sqlite_store_test, read_only_reads_every_record_and_leaves_bytes_and_mode_as_they_were) {
  {
    sqlite_store store(database_file);
    ASSERT_TRUE(store.add_provider(sample_provider("p")));
    store.create_key("k", "F000000000000000", "h");
  }
  ASSERT_EQ(::chmod(database_file.c_str(), 0644), 0);
  auto before = bytes_of(database_file);
  {
    sqlite_store source(sqlite_store::read_only, database_file);
    EXPECT_EQ(source.providers(), std::vector<provider_record>{sample_provider("p")});
    ASSERT_EQ(source.keys().size(), 1u);
    EXPECT_EQ(source.keys().at(0).public_id, "F000000000000000");
    EXPECT_THROW(source.add_provider(sample_provider("q")), storage_error);
  }
  EXPECT_EQ(bytes_of(database_file), before);
  EXPECT_EQ(permission_bits(database_file), 0644u);
}

// An older emr's store is read through a migrated copy in memory; the file keeps its schema.
TEST_F(sqlite_store_test, read_only_reads_an_older_schema_without_migrating_the_file) {
  write_schema_1_store(database_file, sample_provider("p"));
  auto before = bytes_of(database_file);
  {
    sqlite_store source(sqlite_store::read_only, database_file);
    EXPECT_EQ(source.providers(), std::vector<provider_record>{sample_provider("p")});
    EXPECT_EQ(source.schema_version(), latest_schema_version);
  }
  EXPECT_EQ(bytes_of(database_file), before);
  EXPECT_EQ(raw_query(database_file, "SELECT max(version) FROM schema_migrations"), "1");
}

TEST_F(sqlite_store_test, read_only_refuses_what_is_not_an_emr_store_and_leaves_it_alone) {
  fs::create_directories(database_file.parent_path());
  auto refusal = [](const fs::path& file) -> std::string {
    try {
      sqlite_store source(sqlite_store::read_only, file);
    } catch (const storage_error& e) {
      return e.what();
    }
    return "opened";
  };
  auto missing = directory / "missing.db";
  EXPECT_EQ(refusal(missing),
            "sqlite_store: cannot read " + missing.string() + ": No such file or directory");
  EXPECT_FALSE(fs::exists(missing));

  auto empty = directory / "empty.db";
  std::ofstream{empty};
  EXPECT_EQ(refusal(empty), "sqlite_store: " + empty.string() + " is empty, not an emr store");
  EXPECT_EQ(fs::file_size(empty), 0u);

  auto garbage = directory / "config.toml";
  std::ofstream{garbage} << "[server]\nbind = \"127.0.0.1:3200\"\n";
  ASSERT_EQ(::chmod(garbage.c_str(), 0644), 0);
  EXPECT_EQ(refusal(garbage),
            "sqlite_store: read " + garbage.string() + ": file is not a database");
  EXPECT_EQ(bytes_of(garbage), "[server]\nbind = \"127.0.0.1:3200\"\n");
  EXPECT_EQ(permission_bits(garbage), 0644u);

  auto other = directory / "other.db";
  raw_execute(other, "CREATE TABLE notes (body TEXT)");
  auto other_before = bytes_of(other);
  EXPECT_EQ(refusal(other),
            "sqlite_store: " + other.string() + " is an SQLite database but not an emr store");
  EXPECT_EQ(bytes_of(other), other_before);

  { sqlite_store store(database_file); }
  raw_query(database_file, "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)");
  EXPECT_EQ(refusal(database_file),
            fmt::format("sqlite_store: {} has schema version 999 but this emr knows only up to "
                        "{}; upgrade emr",
                        database_file.string(), latest_schema_version));
}

TEST_F(sqlite_store_test, unopenable_path_throws_storage_error) {
  fs::create_directories(database_file); // a directory where the file should be
  EXPECT_THROW(sqlite_store{database_file}, storage_error);
}

} // namespace
} // namespace emr

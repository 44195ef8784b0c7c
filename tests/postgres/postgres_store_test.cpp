// postgres_store against a real PostgreSQL 15 cluster (started by the CTest fixture `postgres`):
// every store operation round-trips, replicas starting together migrate once, two replicas see
// each other's writes at once, a dropped connection is reopened, and no error shows a password.

#include "storage/database_url.hpp"
#include "storage/migrations.hpp"
#include "storage/postgres_store.hpp"
#include "tests/postgres/cluster.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cmath>

#include <thread>

namespace emr {
namespace {

using testing::run_sql;

/// A fresh database per test.
class postgres_store_test : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_EQ(database.error(), ""); }

  provider_record provider_named(const std::string& n) {
    provider_record p;
    p.name = n;
    p.type = "voyage";
    p.endpoint = "http://127.0.0.1:9/v1/embeddings";
    p.model = "voyage-3.5";
    p.api_key_env = "VOYAGE_API_KEY";
    p.max_batch = 64;
    p.requests_per_minute = 600;
    p.tokens_per_minute = 1'000'000;
    return p;
  }

  testing::postgres_database database;
  const std::string& url = database.url();
};

TEST_F(postgres_store_test, providers_round_trip_in_name_order) {
  postgres_store db{url};
  auto b = provider_named("b-provider");
  auto a = provider_named("a-provider");
  a.enabled = false;
  a.created_at = 1'700'000'000;
  ASSERT_TRUE(db.add_provider(b));
  ASSERT_TRUE(db.add_provider(a));
  EXPECT_FALSE(db.add_provider(provider_named("a-provider"))) << "a name is taken once";
  auto all = db.providers();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], a);
  EXPECT_EQ(all[1].name, "b-provider");
  EXPECT_GT(all[1].created_at, 0) << "stamped when not given";
  a.model = "voyage-3-large";
  a.requests_per_minute = 0;
  a.created_at = 5;
  ASSERT_TRUE(db.update_provider(a));
  auto updated = db.provider("a-provider");
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->model, "voyage-3-large");
  EXPECT_EQ(updated->requests_per_minute, 0);
  EXPECT_EQ(updated->created_at, 1'700'000'000) << "created_at never changes";
  EXPECT_FALSE(db.update_provider(provider_named("nobody")));
  EXPECT_TRUE(db.remove_provider("a-provider"));
  EXPECT_FALSE(db.remove_provider("a-provider"));
  EXPECT_FALSE(db.provider("a-provider"));
  EXPECT_EQ(db.providers().size(), 1u);
}

TEST_F(postgres_store_test, names_with_sql_metacharacters_round_trip_verbatim) {
  postgres_store db{url};
  auto p = provider_named("it's; DROP TABLE providers; -- \"q\" $1 \\ ünï");
  ASSERT_TRUE(db.add_provider(p));
  auto back = db.provider(p.name);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->name, p.name);
  auto k = db.create_key("o'brien \"keys\" $2", "pub_meta", "hash");
  EXPECT_EQ(db.key(k.id)->name, "o'brien \"keys\" $2");
}

TEST_F(postgres_store_test, negative_rate_limits_are_refused_by_the_schema) {
  postgres_store db{url};
  auto p = provider_named("negative");
  p.requests_per_minute = -1;
  EXPECT_THROW(db.add_provider(p), storage_error);
  EXPECT_FALSE(db.provider("negative"));
}

TEST_F(postgres_store_test, keys_are_created_revoked_once_and_rotated_atomically) {
  postgres_store db{url};
  auto first = db.create_key("svc", "pub_1", "hash-1");
  EXPECT_GT(first.id, 0);
  EXPECT_GT(first.created_at, 0);
  EXPECT_EQ(db.key_by_public_id("pub_1"), first);
  EXPECT_THROW(db.create_key("other", "pub_1", "hash-x"), storage_error) << "a public id is unique";
  auto rotated = db.rotate_key(first.id, "pub_2", "hash-2");
  ASSERT_TRUE(rotated);
  EXPECT_EQ(rotated->name, "svc");
  EXPECT_GT(rotated->id, first.id);
  EXPECT_TRUE(db.key(first.id)->revoked_at) << "the old key is revoked in the same transaction";
  EXPECT_FALSE(db.rotate_key(first.id, "pub_3", "hash-3")) << "a revoked key does not rotate";
  EXPECT_FALSE(db.key_by_public_id("pub_3"));
  EXPECT_FALSE(db.rotate_key(999, "pub_4", "hash-4"));
  EXPECT_THROW(db.rotate_key(rotated->id, "pub_1", "hash-dup"), storage_error);
  EXPECT_FALSE(db.key(rotated->id)->revoked_at) << "a failed rotation leaves the key valid";
  EXPECT_TRUE(db.revoke_key(rotated->id));
  EXPECT_FALSE(db.revoke_key(rotated->id));
  EXPECT_FALSE(db.revoke_key(999));
  auto all = db.keys();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, first.id);
}

TEST_F(postgres_store_test, last_use_only_moves_forward_even_within_one_batch) {
  postgres_store db{url};
  auto a = db.create_key("a", "pub_a", "h");
  auto b = db.create_key("b", "pub_b", "h");
  db.touch_keys({{a.id, 100}, {a.id, 300}, {a.id, 200}, {b.id, 50}});
  EXPECT_EQ(db.key(a.id)->last_used_at, 300);
  EXPECT_EQ(db.key(b.id)->last_used_at, 50);
  db.touch_keys({{a.id, 250}, {b.id, 60}, {12345, 70}});
  EXPECT_EQ(db.key(a.id)->last_used_at, 300) << "an older batch never moves it back";
  EXPECT_EQ(db.key(b.id)->last_used_at, 60);
  db.touch_keys({});
}

TEST_F(postgres_store_test, key_usage_adds_up_per_key_and_day_across_replicas) {
  postgres_store one{url};
  postgres_store other{url};
  auto a = one.create_key("a", "pub_a", "h");
  one.add_key_usage({{a.id, 20000, 1, 3, 12, 2, 0.25, 1, 0}});
  other.add_key_usage({{a.id, 20000, 2, 5, 20, 5, 0.5, 0, 1}, {a.id, 20001, 1, 1, 4, 0, 0, 1, 0}});
  EXPECT_EQ(one.key_usage(a.id, 0),
            (std::vector<key_usage_row>{{a.id, 20000, 3, 8, 32, 7, 0.75, 1, 1},
                                        {a.id, 20001, 1, 1, 4, 0, 0, 1, 0}}));
  EXPECT_EQ(other.key_usage(a.id, 20001).size(), 1u);
}

TEST_F(postgres_store_test, cached_vectors_are_shared_bit_identical_and_trimmed) {
  postgres_store one{url};
  postgres_store other{url};
  std::vector<float> exact{0.1f, -1.0f / 3, 1e-38f, std::nextafter(1.0f, 2.0f)};
  std::vector<stored_vector> kept;
  // More rows than one statement carries.
  for (int i = 0; i < 600; ++i)
    kept.push_back({fmt::format("{:064x}", i), exact, i, 1000 + i});
  one.put_cached_vectors(kept);
  EXPECT_EQ(other.cached_vector_count(), 600);
  std::vector<std::string> wanted;
  for (int i = 0; i < 600; i += 2)
    wanted.push_back(kept[i].key);
  auto found = other.cached_vectors(wanted, 1100);
  std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.key < b.key; });
  ASSERT_EQ(found.size(), 249u) << "texts 0-100 expired by 1100";
  EXPECT_EQ(found.front(), kept[102]);
  EXPECT_EQ(found.back(), kept[598]);
  auto newer = kept[599];
  newer.values = {2.0f};
  // A text embedded twice in one save: kept once, as the later.
  auto older = kept[599];
  older.values = {1.0f};
  other.put_cached_vectors({older, newer});
  EXPECT_EQ(one.cached_vectors({newer.key}, 0), std::vector<stored_vector>{newer});
  EXPECT_EQ(one.trim_cached_vectors(1100, 100), 500) << "101 expired, then 399 over the bound";
  EXPECT_EQ(other.cached_vectors({kept[499].key, kept[500].key}, 0).size(), 1u);
  EXPECT_EQ(other.clear_cached_vectors(), 100);
  EXPECT_EQ(one.cached_vector_count(), 0);
}

TEST_F(postgres_store_test, replicas_starting_together_migrate_once_and_see_each_others_writes) {
  constexpr int replicas = 4;
  std::vector<std::unique_ptr<postgres_store>> stores(replicas);
  std::vector<std::string> errors(replicas);
  {
    std::vector<std::jthread> starting;
    for (int i = 0; i < replicas; ++i)
      starting.emplace_back([&, i] {
        try {
          stores[i] = std::make_unique<postgres_store>(url);
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
  }
  for (int i = 0; i < replicas; ++i)
    ASSERT_TRUE(stores[i]) << errors[i];
  auto* db = PQconnectdb(url.c_str());
  auto* r = PQexec(db, "SELECT count(*), max(version) FROM schema_migrations");
  EXPECT_EQ(std::string(PQgetvalue(r, 0, 0)), std::to_string(migrations.size()));
  EXPECT_EQ(std::string(PQgetvalue(r, 0, 1)), std::to_string(latest_schema_version));
  PQclear(r);
  PQfinish(db);
  for (auto& s : stores) {
    EXPECT_EQ(s->schema_version(), latest_schema_version);
    EXPECT_EQ(s->integrity_check(), "ok");
  }
  auto key = stores[0]->create_key("fleet", "pub_fleet", "hash");
  EXPECT_EQ(stores[3]->key_by_public_id("pub_fleet"), key) << "another replica sees it at once";
  ASSERT_TRUE(stores[2]->revoke_key(key.id));
  EXPECT_TRUE(stores[1]->key(key.id)->revoked_at);
}

TEST_F(postgres_store_test, a_connection_the_server_dropped_is_reopened) {
  postgres_store db{url};
  db.create_key("before", "pub_before", "h");
  ASSERT_EQ(run_sql(database.admin_url(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                          " WHERE datname = '" +
                                              database.name() + "'"),
            "");
  // The call that finds the connection gone may fail; the one after it reconnects.
  try {
    db.keys();
  } catch (const storage_error&) {
  }
  EXPECT_EQ(db.keys().size(), 1u);
  EXPECT_EQ(db.create_key("after", "pub_after", "h").name, "after");
}

TEST_F(postgres_store_test, refuses_a_schema_newer_than_this_build) {
  { postgres_store db{url}; }
  ASSERT_EQ(run_sql(url, "INSERT INTO schema_migrations VALUES (" +
                             std::to_string(latest_schema_version + 1) + ", 0)"),
            "");
  try {
    postgres_store db{url};
    FAIL() << "opened a database from a newer emr";
  } catch (const storage_error& e) {
    EXPECT_NE(std::string(e.what()).find("upgrade emr"), std::string::npos) << e.what();
  }
}

TEST(postgres_store, an_unreachable_server_is_unavailable_and_the_error_has_no_password) {
  // A closed loopback port: nothing is sent anywhere else.
  try {
    postgres_store db{"postgresql://emr:s3cret-pass@127.0.0.1:1/emr?connect_timeout=2"};
    FAIL() << "connected to nothing";
  } catch (const store_unavailable& e) {
    std::string what = e.what();
    EXPECT_EQ(what.find("s3cret-pass"), std::string::npos) << what;
    EXPECT_NE(what.find("postgresql://emr:***@127.0.0.1:1/emr"), std::string::npos) << what;
  }
}

TEST(postgres_store, a_url_libpq_cannot_parse_is_refused_without_quoting_its_password) {
  // libpq's own reasons quote the offending text: here the whole password.
  for (std::string url : {"postgresql://emr:50%off@127.0.0.1:1/emr", "host=h password=50%off x"}) {
    try {
      postgres_store db{url};
      FAIL() << "parsed " << url;
    } catch (const store_unavailable& e) {
      std::string what = e.what();
      EXPECT_EQ(what.find("50%off"), std::string::npos) << what;
      EXPECT_NE(what.find("not a valid database URL"), std::string::npos) << what;
    }
  }
}

TEST(postgres_store, redaction_masks_passwords_in_both_url_forms) {
  EXPECT_EQ(redacted_database_url("postgresql://u:p%40ss@h:5432/db"),
            "postgresql://u:***@h:5432/db");
  EXPECT_EQ(redacted_database_url("postgres://u@h/db"), "postgres://u@h/db");
  EXPECT_EQ(redacted_database_url("host=h password='a b' dbname=x"),
            "host=h password=*** dbname=x");
  EXPECT_EQ(redacted_database_url(R"(host=h password='it\'s' dbname=x)"),
            "host=h password=*** dbname=x")
      << "an escaped quote does not end the value";
  EXPECT_EQ(redacted_database_url("postgresql://u@h/db?password=secret"),
            "postgresql://u@h/db?password=***");
  EXPECT_EQ(redacted_database_url(""), "");
}

} // namespace
} // namespace emr

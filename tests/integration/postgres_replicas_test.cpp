// Two `emr serve` replicas on one PostgreSQL database (a fresh one in the cluster the CTest
// fixture `postgres` starts): a key created through one replica is good on the other at once,
// a key revoked through one is refused by a replica that never verified it, and a provider added
// through one serves through the other once that one (re)starts. Vectors are checked.

#include "tests/integration/harness.hpp"
#include "tests/postgres/cluster.hpp"
#include "tools/load_client.hpp"

#include <gtest/gtest.h>

namespace json = boost::json;
using namespace emr::testing;

namespace {

constexpr const char* fast_auth = "[auth]\nargon2_t_cost = 1\nargon2_m_cost_kib = 64\n";

/// One caller's text through `server`; the status, with the vector checked when it is 200.
int embed_through(const emr_server& server, const std::string& key, const std::string& text) {
  auto results = emr::load::fire_concurrent(
      {server.base_url(), "/v1/embeddings", key, {{"provider", "\"voyage\""}}, {}},
      {emr::load::caller{{text}}}, emr::load::expectation{"voyage-3.5"});
  EXPECT_TRUE(results[0].status != 200 || results[0].vectors_ok) << results[0].error;
  return results[0].status;
}

TEST(replicas_on_postgresql, share_keys_and_providers_through_the_database) {
  postgres_database database;
  ASSERT_EQ(database.error(), "");
  scratch_dir first_dir, second_dir;
  fake_provider fake{first_dir};
  std::map<std::string, std::string> env{{"EMR_DATABASE_URL", database.url()}};
  emr_server first{first_dir, fast_auth, env};
  ASSERT_EQ(first.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5", 128),
            201);
  auto key = first.create_key("shared");
  auto revoked = first.create_key("revoked");
  EXPECT_EQ(embed_through(first, key, "through the first replica"), 200);

  // Started after the writes, the second replica finds the provider and both keys in the store.
  emr_server second{second_dir, fast_auth, env};
  EXPECT_EQ(embed_through(second, key, "through the second replica"), 200);
  auto listed = second.admin("GET", "/admin/keys").json().at("keys").as_array();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed.at(1).at("name").as_string(), "revoked");
  auto id = listed.at(1).at("id").to_number<std::int64_t>();
  ASSERT_EQ(second.admin("DELETE", "/admin/keys/" + std::to_string(id)).status, 200);
  EXPECT_EQ(embed_through(first, revoked, "revoked through the other replica"), 401)
      << "a replica that never verified the key reads the revocation from the store";
  EXPECT_EQ(fake.stats().at("texts").as_int64(), 2) << "exactly the two callers' texts went up";
}

} // namespace

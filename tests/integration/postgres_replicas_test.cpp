// `emr serve` replicas on one PostgreSQL database (a fresh one in the cluster the CTest fixture
// `postgres` starts): a key created through one replica is good on the other at once, a key
// revoked through one is refused by the others (within a second, even where it was cached), and
// a provider added through one serves through the others. Vectors are checked.

#include "tests/integration/harness.hpp"
#include "tests/postgres/cluster.hpp"
#include "tools/load_client.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <thread>

namespace json = boost::json;
using namespace emr::testing;

namespace {

constexpr const char* fast_auth = "[auth]\nargon2_t_cost = 1\nargon2_m_cost_kib = 64\n";

/// One caller's text through `server`; the status, with the vector checked when it is 200.
int embed_through(const emr_server& server, const std::string& key, const std::string& text,
                  const std::string& provider = "voyage") {
  auto results = emr::load::fire_concurrent(
      {server.base_url(), "/v1/embeddings", key, {{"provider", "\"" + provider + "\""}}, {}},
      {emr::load::caller{{text}}}, emr::load::expectation{"voyage-3.5"});
  EXPECT_TRUE(results[0].status != 200 || results[0].vectors_ok) << results[0].error;
  return results[0].status;
}

/// How long until `server` answers `status` for the caller, asking every 20 ms; nullopt after
/// `give_up`.
std::optional<std::chrono::milliseconds> time_until(int status, std::chrono::milliseconds give_up,
                                                    const std::function<int()>& ask) {
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    if (ask() == status)
      return elapsed;
    if (elapsed > give_up)
      return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

/// A fresh database for the replicas a test starts, their scratch places and the fake they call.
struct replicas_on_postgresql : ::testing::Test {
  postgres_database database;
  scratch_dir first_dir, second_dir;
  fake_provider fake{first_dir};
  std::map<std::string, std::string> env{{"EMR_DATABASE_URL", database.url()}};

  void SetUp() override { ASSERT_EQ(database.error(), ""); }
  int add_voyage(const emr_server& through) const {
    return through.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5", 128);
  }
};

TEST_F(replicas_on_postgresql, share_keys_and_providers_through_the_database) {
  emr_server first{first_dir, fast_auth, env};
  ASSERT_EQ(add_voyage(first), 201);
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

TEST_F(replicas_on_postgresql, a_running_replica_hears_revocations_and_new_providers_at_once) {
  emr_server first{first_dir, fast_auth, env};
  emr_server second{second_dir, fast_auth, env};
  ASSERT_EQ(add_voyage(first), 201);
  auto key = first.create_key("both");
  auto spare = first.create_key("spare");
  // The second replica started before the provider existed: it hears of it.
  auto provider_seen = time_until(200, std::chrono::seconds{5}, [&] {
    return embed_through(second, spare, "the provider another replica added");
  });
  ASSERT_TRUE(provider_seen) << "the second replica never served the provider the first added";
  EXPECT_LE(provider_seen->count(), 1000) << "measured: " << provider_seen->count() << " ms";
  // Both replicas verified the key and keep it in their caches.
  ASSERT_EQ(embed_through(first, key, "cached on the first"), 200);
  ASSERT_EQ(embed_through(second, key, "cached on the second"), 200);
  auto id = first.admin("GET", "/admin/keys").json().at("keys").as_array().at(0).at("id");
  ASSERT_EQ(second.admin("DELETE", "/admin/keys/" + json::serialize(id)).status, 200);
  auto refused = time_until(401, std::chrono::seconds{5},
                            [&] { return embed_through(first, key, "revoked elsewhere"); });
  ASSERT_TRUE(refused) << "the first replica kept serving a key the second revoked";
  EXPECT_LE(refused->count(), 1000) << "measured: " << refused->count() << " ms";
}

} // namespace

// `emr serve` replicas on one PostgreSQL database (a fresh one in the cluster the CTest fixture
// `postgres` starts): a key created through one replica is good on the other at once, a key
// revoked through one is refused by the others (within a second, even where it was cached), and
// a provider added through one serves through the others. Vectors are checked.

#include "storage/postgres_store.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/load_balancer.hpp"
#include "tests/postgres/cluster.hpp"
#include "tools/load_client.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <functional>
#include <optional>
#include <set>
#include <thread>

namespace json = boost::json;
using namespace emr::testing;

namespace {

constexpr const char* fast_auth = "[auth]\nargon2_t_cost = 1\nargon2_m_cost_kib = 64\n";

/// One caller's text to emr at `base_url`; the status, with the vector checked when it is 200.
int embed_at(const std::string& base_url, const std::string& key, const std::string& text) {
  auto results = emr::load::fire_concurrent(
      {base_url, "/v1/embeddings", key, {{"provider", "\"voyage\""}}, {}},
      {emr::load::caller{{text}}}, emr::load::expectation{"voyage-3.5"});
  EXPECT_TRUE(results[0].status != 200 || results[0].vectors_ok) << results[0].error;
  return results[0].status;
}

int embed_through(const emr_server& server, const std::string& key, const std::string& text) {
  return embed_at(server.base_url(), key, text);
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

/// The fixture's cluster stopped for a while, or `frozen` (its processes stopped by SIGSTOP: a
/// server that keeps its connections and never answers): brought back by end(), or however the
/// test ends, since the other tests share it.
class store_outage {
public:
  enum kind { down, frozen };
  explicit store_outage(kind how = down)
      : how_(how), started_(postgres_cluster(how == down ? "down" : "freeze")) {}
  ~store_outage() { end(); }
  store_outage(const store_outage&) = delete;
  store_outage& operator=(const store_outage&) = delete;
  bool started() const { return started_; }
  /// True when the cluster is up again.
  bool end() {
    if (!started_ || ended_)
      return true;
    ended_ = true;
    return postgres_cluster(how_ == down ? "up" : "thaw");
  }

private:
  kind how_;
  bool started_;
  bool ended_ = false;
};

/// The status of one caller's text to `server`, or 0 when no answer came within 10 s: far more
/// than the store's deadlines, where a caller waiting on a database that never answers waits.
int answered_within_10s(const emr_server& server, const std::string& key, const std::string& text) {
  httplib::Client client{"127.0.0.1", server.port()};
  client.set_read_timeout(10);
  auto body = json::serialize(json::object{{"input", text}, {"provider", "voyage"}});
  auto r =
      client.Post("/v1/embeddings", {{"Authorization", "Bearer " + key}}, body, "application/json");
  return r ? r->status : 0;
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
  if (!sanitized_build) { // the sanitizers slow each round of callers, not the propagation
    EXPECT_LE(provider_seen->count(), 1000) << "measured: " << provider_seen->count() << " ms";
  }
  // Both replicas verified the key and keep it in their caches.
  ASSERT_EQ(embed_through(first, key, "cached on the first"), 200);
  ASSERT_EQ(embed_through(second, key, "cached on the second"), 200);
  auto id = first.admin("GET", "/admin/keys").json().at("keys").as_array().at(0).at("id");
  ASSERT_EQ(second.admin("DELETE", "/admin/keys/" + json::serialize(id)).status, 200);
  auto refused = time_until(401, std::chrono::seconds{5},
                            [&] { return embed_through(first, key, "revoked elsewhere"); });
  ASSERT_TRUE(refused) << "the first replica kept serving a key the second revoked";
  if (!sanitized_build) { // the sanitizers slow each round of callers, not the propagation
    EXPECT_LE(refused->count(), 1000) << "measured: " << refused->count() << " ms";
  }
}

TEST_F(replicas_on_postgresql, a_single_box_grows_into_a_fleet_with_its_keys_still_valid) {
  std::string key;
  std::filesystem::path sqlite_file;
  {
    emr_server single{first_dir, fast_auth}; // no EMR_DATABASE_URL: its SQLite file
    ASSERT_EQ(add_voyage(single), 201);
    key = single.create_key("from the single box");
    ASSERT_EQ(embed_through(single, key, "on the single box"), 200);
    sqlite_file = single.db_path;
    ASSERT_EQ(single.stop(), 0);
  }
  auto copied =
      run_cli({"store", "migrate", "--from", sqlite_file.string(), "--to", database.url()});
  ASSERT_EQ(copied.code, 0) << copied.err;
  EXPECT_NE(copied.out.find("copied 1 providers and 1 caller keys"), std::string::npos)
      << copied.out;
  auto again =
      run_cli({"store", "migrate", "--from", sqlite_file.string(), "--to", database.url()});
  EXPECT_EQ(again.code, 1) << "a second copy into a database that holds records is refused";
  EXPECT_NE(again.err.find("copy into an empty database"), std::string::npos) << again.err;
  emr_server replica{second_dir, fast_auth, env};
  EXPECT_EQ(embed_through(replica, key, "on the fleet, with the old key"), 200);
}

TEST_F(replicas_on_postgresql, an_outage_of_the_store_is_ridden_out_and_writes_resume) {
  emr_server replica{first_dir, fast_auth, env};
  ASSERT_EQ(add_voyage(replica), 201);
  auto known = replica.create_key("known");
  auto unverified = replica.create_key("not used yet");
  ASSERT_EQ(embed_through(replica, known, "before the outage"), 200);

  store_outage outage;
  ASSERT_TRUE(outage.started());
  EXPECT_EQ(embed_through(replica, known, "during the outage"), 200)
      << "a key the replica verified keeps being served";
  auto write = replica.admin("POST", "/admin/keys", R"({"name":"during"})");
  ASSERT_EQ(write.status, 503) << write.body << replica.process().log();
  EXPECT_EQ(write.json().at("error").at("type"), "store_unavailable") << write.body;
  EXPECT_EQ(embed_through(replica, unverified, "a key the replica never checked"), 503);

  ASSERT_TRUE(outage.end());
  auto after = replica.admin("POST", "/admin/keys", R"({"name":"after"})");
  EXPECT_EQ(after.status, 201) << after.body;
  EXPECT_EQ(embed_through(replica, unverified, "after the outage"), 200);
  auto names = std::set<std::string>{};
  auto listed = replica.admin("GET", "/admin/keys").json();
  for (const auto& k : listed.at("keys").as_array())
    names.insert(std::string{k.at("name").as_string()});
  EXPECT_EQ(names, (std::set<std::string>{"known", "not used yet", "after"}))
      << "the write refused during the outage was not made";
}

TEST_F(replicas_on_postgresql, a_text_one_replica_embedded_is_answered_by_another_from_the_store) {
  std::string cached = std::string{fast_auth} + "[cache]\nstored_entries = 1000\n";
  emr_server first{first_dir, cached, env};
  emr_server second{second_dir, cached, env};
  ASSERT_EQ(add_voyage(first), 201);
  auto key = first.create_key("shared");
  const std::vector<std::string> texts{"one fleet", "one cache", "many replicas"};
  for (const auto& text : texts)
    ASSERT_EQ(embed_through(first, key, text), 200);
  ASSERT_EQ(fake.stats().at("texts").as_int64(), 3);
  auto saved = [&] { return first.admin("GET", "/admin/cache").json().at("saved").as_int64(); };
  for (int i = 0; i < 100 && saved() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  ASSERT_EQ(saved(), 3) << "written within a second or two";

  fake.reset();
  for (const auto& text : texts)
    EXPECT_EQ(embed_through(second, key, text), 200) << "the vector is checked too";
  EXPECT_EQ(fake.stats().at("calls").as_int64(), 0) << "every text came from the store";
  auto stats = second.admin("GET", "/admin/cache").json();
  EXPECT_EQ(stats.at("restored").as_int64(), 3);
  EXPECT_EQ(stats.at("stored_entries").as_int64(), 3);
}

TEST_F(replicas_on_postgresql, the_stored_cache_rides_out_an_outage_of_the_store) {
  std::string cached = std::string{fast_auth} + "[cache]\nstored_entries = 1000\n";
  emr_server replica{first_dir, cached, env};
  ASSERT_EQ(add_voyage(replica), 201);
  auto key = replica.create_key("cached");
  ASSERT_EQ(embed_through(replica, key, "embedded before the outage"), 200);

  store_outage outage;
  ASSERT_TRUE(outage.started());
  fake.reset();
  EXPECT_EQ(embed_through(replica, key, "embedded before the outage"), 200);
  EXPECT_EQ(fake.stats().at("texts").as_int64(), 0) << "answered from memory";
  EXPECT_EQ(embed_through(replica, key, "first asked during the outage"), 200)
      << "the store cannot be read: the text goes upstream" << replica.process().log();
  EXPECT_EQ(fake.stats().at("texts").as_int64(), 1);
  auto stats = replica.admin("GET", "/admin/cache");
  ASSERT_EQ(stats.status, 200) << "memory's numbers still answer: " << stats.body;
  EXPECT_TRUE(stats.json().at("stored_entries").is_null()) << stats.body;
  EXPECT_GE(stats.json().at("store_errors").as_int64(), 1) << stats.body;
  ASSERT_TRUE(outage.end());
}

// A database that stops answering (its processes stopped, so that connections stay up and every
// statement waits) fails each read within the connection's deadline, and the next use's
// reconnect within it too; once it answers again the store reconnects.
TEST_F(replicas_on_postgresql, a_store_whose_database_stops_answering_fails_within_its_deadline) {
  emr::postgres_store store{database.url(), 1};
  ASSERT_EQ(store.keys().size(), 0u);
  {
    store_outage outage{store_outage::frozen};
    ASSERT_TRUE(outage.started());
    EXPECT_THROW(store.keys(), emr::store_unavailable) << "the statement's answer never comes";
    EXPECT_THROW(store.keys(), emr::store_unavailable) << "the reconnect is never answered";
    ASSERT_TRUE(outage.end());
  }
  EXPECT_EQ(store.create_key("after", "after-id", "hash").name, "after");
  EXPECT_EQ(store.keys().size(), 1u);
}

// The same on the caller's side: with the cache kept in the store and a key with a daily limit,
// callers are answered while the database does not answer, the fresh text from upstream and the
// limited key's from memory, its last day count in force.
TEST_F(replicas_on_postgresql, callers_are_answered_while_the_store_does_not_answer) {
  std::string cached = std::string{fast_auth} + "[cache]\nstored_entries = 10000\n";
  emr_server replica{first_dir, cached, env};
  ASSERT_EQ(add_voyage(replica), 201);
  auto key = replica.create_key("unlimited");
  auto limited = replica.create_key("limited");
  ASSERT_EQ(embed_through(replica, key, "embedded before"), 200);
  ASSERT_EQ(embed_through(replica, limited, "embedded before"), 200);
  auto keys = replica.admin("GET", "/admin/keys").json().at("keys").as_array();
  auto limited_id = json::serialize(keys.at(1).at("id"));
  ASSERT_EQ(
      replica.admin("PATCH", "/admin/keys/" + limited_id, R"({"tokens_per_day":1000000})").status,
      200)
      << "a limit newly set: the key's next request reads its use today from the store";
  fake.reset();

  store_outage outage{store_outage::frozen};
  ASSERT_TRUE(outage.started());
  EXPECT_EQ(answered_within_10s(replica, key, "first asked while the store is frozen"), 200)
      << "the store's read fails and the text goes upstream" << replica.process().log();
  EXPECT_EQ(fake.stats().at("texts").as_int64(), 1);
  EXPECT_EQ(answered_within_10s(replica, limited, "embedded before"), 200)
      << "the limited key's use today cannot be read: its last count stays in force"
      << replica.process().log();
  EXPECT_EQ(fake.stats().at("texts").as_int64(), 1) << "answered from memory";
  auto stats = replica.admin("GET", "/admin/cache");
  ASSERT_EQ(stats.status, 200) << stats.body;
  EXPECT_GE(stats.json().at("store_errors").as_int64(), 1) << stats.body;
  ASSERT_TRUE(outage.end());

  auto after = replica.admin("POST", "/admin/keys", R"({"name":"after"})");
  EXPECT_EQ(after.status, 201) << "the store reconnects once the database answers: " << after.body;
}

/// Three replicas on the fixture's database behind a real HAProxy, and the admin API through it:
/// each write lands on whichever replica HAProxy picks.
struct replicas_behind_haproxy : replicas_on_postgresql {
  scratch_dir third_dir, proxy_dir;
  emr_server r1{first_dir, fast_auth, env};
  emr_server r2{second_dir, fast_auth, env};
  emr_server r3{third_dir, fast_auth, env};
  load_balancer proxy{proxy_dir, {r1.port(), r2.port(), r3.port()}};

  http_answer admin(const std::string& method, const std::string& path,
                    const std::string& body) const {
    return admin_call(proxy.port(), method, path, body);
  }
  /// Adds voyage at `endpoint` with the operator's `requests_per_minute` (0: none); the status.
  int add_voyage_at(const std::string& endpoint, std::int64_t requests_per_minute = 0) const {
    json::object provider{{"name", "voyage"},
                          {"type", "voyage"},
                          {"endpoint", endpoint},
                          {"model", "voyage-3.5"},
                          {"api_key_env", provider_key_env}};
    if (requests_per_minute > 0)
      provider["requests_per_minute"] = requests_per_minute;
    return admin("POST", "/admin/providers", json::serialize(provider)).status;
  }
};

TEST_F(replicas_behind_haproxy, serve_as_one) {
  // Each write lands on whichever replica HAProxy picks; every replica must then serve it.
  ASSERT_EQ(add_voyage_at(fake.url("/v1/embeddings")), 201);
  auto created = admin("POST", "/admin/keys", R"({"name":"fleet"})");
  ASSERT_EQ(created.status, 201) << created.body;
  auto key = std::string{created.json().at("key").as_string()};
  int round = 0;
  // How many of six callers in a row (two per replica) got `status`.
  auto six_answered = [&](int status) {
    int answered = 0;
    ++round;
    for (int i = 0; i < 6; ++i)
      answered +=
          embed_at(proxy.base_url(), key,
                   "round " + std::to_string(round) + " caller " + std::to_string(i)) == status;
    return answered;
  };
  auto everywhere = time_until(6, std::chrono::seconds{5}, [&] { return six_answered(200); });
  ASSERT_TRUE(everywhere) << "six callers in a row, two per replica, were not all served";
  if (!sanitized_build) { // the sanitizers slow each round of callers, not the propagation
    EXPECT_LE(everywhere->count(), 1000) << "measured: " << everywhere->count() << " ms";
  }
  for (const auto* replica : {&r1, &r2, &r3})
    EXPECT_GE(replica->stats().at("requests_served").to_number<std::int64_t>(), 1)
        << "HAProxy spread the callers over every replica";

  auto id = admin("GET", "/admin/keys", "").json().at("keys").as_array().at(0).at("id");
  ASSERT_EQ(admin("DELETE", "/admin/keys/" + json::serialize(id), "").status, 200);
  auto refused_everywhere =
      time_until(6, std::chrono::seconds{5}, [&] { return six_answered(401); });
  ASSERT_TRUE(refused_everywhere) << "a replica kept serving the revoked key";
  if (!sanitized_build) { // the sanitizers slow each round of callers, not the propagation
    EXPECT_LE(refused_everywhere->count(), 1000)
        << "measured: " << refused_everywhere->count() << " ms";
  }
}

/// One replica's batcher stats for its sole provider.
json::object provider_stats(const emr_server& replica) {
  return replica.stats().at("providers").as_array().at(0).as_object();
}

// The bench's rate-limited load spread over a fleet: three replicas behind HAProxy, 200 callers
// each, against a fake that refuses a (key, model) past 600 calls in any 60 s, for 60 s, with
// PostgreSQL stopped for ten seconds of it. The replicas share the limit through the database,
// and through the outage each spends a third of it on its own, so no caller and no call is ever
// refused.
TEST_F(replicas_behind_haproxy, share_a_provider_limit_through_a_database_outage) {
  fake_provider limited{first_dir, {"--rpm", "600"}, "limited"};
  ASSERT_EQ(add_voyage_at(limited.url("/v1/embeddings"), 600), 201);
  auto created = admin("POST", "/admin/keys", R"({"name":"fleet"})");
  ASSERT_EQ(created.status, 201) << created.body;
  auto key = std::string{created.json().at("key").as_string()};
  // Every replica runs the provider before the load starts.
  for (const auto* replica : {&r1, &r2, &r3})
    ASSERT_TRUE(time_until(200, std::chrono::seconds{5},
                           [&] { return embed_through(*replica, key, "ready"); }));
  limited.reset();

  // Fewer callers under the sanitizers, which serve a few hundred requests a second.
  const std::size_t callers = sanitized_build ? 3 * 40 : 3 * 200;
  const auto run = std::chrono::seconds{60};
  int refused_during_outage = 0, written_after = 0;
  std::vector<std::string> offline;
  std::thread outage{[&] {
    std::this_thread::sleep_for(std::chrono::seconds{20});
    if (!postgres_cluster("down"))
      return;
    // Each replica notices at its next grant and spends its share alone.
    for (const auto* replica : {&r1, &r2, &r3})
      if (time_until(1, std::chrono::seconds{5}, [&] {
            return provider_stats(*replica).at("budget_sharing").as_string() == "fleet offline";
          }))
        offline.push_back(replica->base_url());
    refused_during_outage = admin("POST", "/admin/keys", R"({"name":"during"})").status;
    std::this_thread::sleep_for(std::chrono::seconds{5});
    if (!postgres_cluster("up"))
      return;
    written_after =
        time_until(201, std::chrono::seconds{15},
                   [&] { return admin("POST", "/admin/keys", R"({"name":"after"})").status; })
            ? 201
            : 0;
  }};
  auto results = emr::load::run_for(
      {proxy.base_url(), "/v1/embeddings", key, {{"provider", "\"voyage\""}}, {}}, callers, run,
      [](std::size_t caller, std::size_t i) {
        return emr::load::caller{
            {"fleet caller " + std::to_string(caller) + " text " + std::to_string(i)}};
      },
      emr::load::expectation{"voyage-3.5"}, false);
  outage.join();

  auto summary = emr::load::summarize(results, 60);
  EXPECT_GT(summary.total, callers) << "every caller was answered more than once";
  EXPECT_EQ(summary.ok, summary.total) << "statuses: " << [&] {
    std::string counts;
    for (auto [status, n] : summary.status_counts)
      counts += std::to_string(status) + "x" + std::to_string(n) + " ";
    return counts;
  }();
  EXPECT_EQ(summary.wrong_vectors, 0u);
  auto at_fake = limited.stats();
  auto statuses = at_fake.at("status_counts").as_object();
  EXPECT_EQ(statuses.size(), 1u) << json::serialize(statuses);
  EXPECT_EQ(statuses.if_contains("429"), nullptr)
      << "the fake refused calls past 600 in a minute: " << json::serialize(statuses);
  std::int64_t attempts = 0;
  for (const auto* replica : {&r1, &r2, &r3}) {
    auto s = provider_stats(*replica);
    EXPECT_EQ(s.at("budget_sharing").as_string(), "fleet") << "shared again after the outage";
    EXPECT_EQ(s.at("fleet_replicas").as_int64(), 3);
    EXPECT_GE(s.at("fleet_grants").as_int64(), 1);
    attempts += s.at("upstream_attempts").as_int64();
  }
  // The first three calls (one per replica, before the reset) are not the fake's any more.
  EXPECT_EQ(attempts - 3, at_fake.at("calls").as_int64())
      << "every call the replicas counted reached the fake, and no other";
  EXPECT_EQ(offline.size(), 3u) << "every replica spent its share alone during the outage";
  EXPECT_EQ(refused_during_outage, 503) << "an admin write while the database is down";
  EXPECT_EQ(written_after, 201) << "admin writes resume once it is back";
}

} // namespace

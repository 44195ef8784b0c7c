// Per-key usage on a live `emr serve`: every answered request is counted against its key (texts,
// tokens, cache hits, the upstream calls its texts rode, errors), read back per day through the
// admin API, the CLI and /metrics, and kept across a restart.

#include "tests/integration/harness.hpp"
#include "tools/fake_vectors.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace json = boost::json;
using namespace emr::testing;

namespace {

// Reuse off: a repeated text is answered by the cache, and counted as a cache hit, or goes
// upstream.
struct key_usage : voyage_stack {
  key_usage() : voyage_stack{"[batching]\nreuse_ms = 0\n"} {}

  std::int64_t key_id(const std::string& name) const {
    auto keys = emr.admin("GET", "/admin/keys").json();
    for (const auto& k : keys.at("keys").as_array())
      if (k.at("name").as_string() == name)
        return k.at("id").as_int64();
    ADD_FAILURE() << "no key named " << name;
    return 0;
  }
  json::object usage(std::int64_t id) const {
    auto answer = emr.admin("GET", "/admin/keys/" + std::to_string(id) + "/usage");
    EXPECT_EQ(answer.status, 200) << answer.body;
    return answer.json().as_object();
  }
  static std::int64_t tokens_of(std::initializer_list<std::string> texts) {
    std::int64_t n = 0;
    for (const auto& t : texts)
      n += emr::fake::fake_token_count(t);
    return n;
  }
};

} // namespace

// A request whose texts went out in two calls, one answered and one refused: the caller gets the
// refusal, but the provider billed the answered call, and the key is charged it.
TEST_F(key_usage, tokens_billed_for_a_request_that_failed_count_against_its_key) {
  ASSERT_EQ(emr.add_provider("pairs", "voyage", fake.url("/v1/embeddings"), "voyage-3.5", 2), 201);
  auto id = key_id("voyage-stack");
  auto a = emr.embed(key, R"({"provider":"pairs","input":["foxtrot-1","foxtrot-2","__poison__"]})");
  ASSERT_EQ(a.status, 400) << a.body;
  EXPECT_EQ(fake.stats().at("calls").as_int64(), 2) << "the pair, then the poison alone";
  auto today = usage(id).at("days").at(0);
  EXPECT_EQ(today.at("requests").as_int64(), 1);
  EXPECT_EQ(today.at("errors").as_int64(), 1);
  EXPECT_EQ(today.at("texts").as_int64(), 0) << "no vector reached the caller";
  EXPECT_EQ(today.at("tokens").as_int64(), tokens_of({"foxtrot-1", "foxtrot-2"}));

  // The same as a sub-request of a batch.
  auto batch = http_call(
      emr.port(), "POST", "/v1/embeddings/batch",
      R"({"requests":[{"id":1,"provider":"pairs","input":["golf-1","golf-2","__poison__"]}]})",
      {{"Authorization", "Bearer " + key}});
  ASSERT_EQ(batch.status, 200) << batch.body;
  EXPECT_EQ(batch.json().at("results").at(0).at("status").as_int64(), 400) << batch.body;
  today = usage(id).at("days").at(0);
  EXPECT_EQ(today.at("tokens").as_int64(),
            tokens_of({"foxtrot-1", "foxtrot-2", "golf-1", "golf-2"}));
}

TEST_F(key_usage, every_request_counts_against_its_key_per_day) {
  auto other = emr.create_key("other-team");
  auto id = key_id("voyage-stack");
  // Two requests with three new texts each, then one whose texts were all seen: 9 texts, 3 of
  // them cache hits; a 400 after authentication; a batch with one good and one bad sub-request.
  ASSERT_EQ(
      emr.embed(key, R"({"provider":"voyage","input":["alpha-1","alpha-2","alpha-3"]})").status,
      200);
  ASSERT_EQ(
      emr.embed(key, R"({"provider":"voyage","input":["bravo-1","bravo-2","bravo-3"]})").status,
      200);
  ASSERT_EQ(
      emr.embed(key, R"({"provider":"voyage","input":["alpha-1","bravo-2","alpha-3"]})").status,
      200);
  ASSERT_EQ(emr.embed(key, R"({"provider":"voyage"})").status, 400);
  auto batch = http_call(
      emr.port(), "POST", "/v1/embeddings/batch",
      R"({"requests":[{"id":1,"provider":"voyage","input":["delta-1"]},{"id":2,"provider":"nope","input":"x"}]})",
      {{"Authorization", "Bearer " + key}});
  ASSERT_EQ(batch.status, 200) << batch.body;
  ASSERT_EQ(emr.embed(other, R"({"provider":"voyage","input":"echo-1"})").status, 200);
  auto upstream_calls = fake.stats().at("calls").as_int64() - 1; // echo-1's call is other's

  auto u = usage(id);
  EXPECT_EQ(u.at("key_id").as_int64(), id);
  EXPECT_EQ(u.at("name").as_string(), "voyage-stack");
  ASSERT_EQ(u.at("days").as_array().size(), 1u) << "today only";
  const auto& today = u.at("days").at(0);
  EXPECT_EQ(today.at("day").as_string(), u.at("to").as_string());
  EXPECT_EQ(today.at("requests").as_int64(), 5);
  EXPECT_EQ(today.at("texts").as_int64(), 10);
  EXPECT_EQ(today.at("cache_hits").as_int64(), 3);
  EXPECT_EQ(today.at("upstream_texts").as_int64(), 7);
  EXPECT_EQ(today.at("tokens").as_int64(),
            tokens_of({"alpha-1", "alpha-2", "alpha-3", "bravo-1", "bravo-2", "bravo-3", "alpha-1",
                       "bravo-2", "alpha-3", "delta-1"}));
  EXPECT_EQ(today.at("errors").as_int64(), 2) << "the 400 and the failed sub-request";
  EXPECT_NEAR(today.at("upstream_calls").to_number<double>(), static_cast<double>(upstream_calls),
              0.01)
      << "alone in its calls, the key pays for each whole";
  auto counts = today.as_object();
  counts.erase("day");
  EXPECT_EQ(u.at("total").as_object(), counts);
  auto other_today = usage(key_id("other-team")).at("days").at(0);
  EXPECT_EQ(other_today.at("requests").as_int64(), 1);
  EXPECT_EQ(other_today.at("texts").as_int64(), 1);

  auto metrics = http_call(emr.port(), "GET", "/metrics").body;
  auto series = "emr_key_texts_total{key=\"" + std::to_string(id) + "\"} 10";
  EXPECT_NE(metrics.find("\n" + series + "\n"), std::string::npos) << metrics;

  auto cli = run_cli({"keys", "usage", std::to_string(id), "--days", "7", "--server",
                      emr.base_url(), "--admin-secret", admin_secret, "--json"});
  ASSERT_EQ(cli.code, 0) << cli.err;
  EXPECT_EQ(json::parse(cli.out).at("total"), u.at("total"));
  auto table = run_cli({"keys", "usage", std::to_string(id), "--server", emr.base_url(),
                        "--admin-secret", admin_secret});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("UPSTREAM CALLS"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("total"), std::string::npos);

  EXPECT_EQ(emr.admin("GET", "/admin/keys/999/usage").status, 404);
  EXPECT_EQ(emr.admin("GET", "/admin/keys/" + std::to_string(id) + "/usage?days=0").status, 400);
  EXPECT_EQ(http_call(emr.port(), "GET", "/admin/keys/" + std::to_string(id) + "/usage").status,
            401);

  // Written to the store at shutdown, read back after a restart.
  ASSERT_EQ(emr.stop(), 0);
  emr.start();
  EXPECT_EQ(usage(id).at("total"), u.at("total"));
}

// The embedding cache on a live `emr serve`: texts seen before never go upstream again, every row
// is still the provider's own vector in the caller's order with the provider's usage, callers can
// refuse the cache, and operators see and clear it.

#include "tests/integration/harness.hpp"
#include "tools/fake_vectors.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace json = boost::json;
using namespace emr::testing;

namespace {

// Reuse off: a repeated text must reach the fake unless the cache answers it.
struct embedding_cache_stack : voyage_stack {
  explicit embedding_cache_stack(const std::string& cache = {})
      : voyage_stack{"[batching]\nreuse_ms = 0\n" + cache} {}

  // Texts of equal length, so that their share of a call's tokens is exact.
  static std::vector<std::string> texts(const std::string& prefix, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i)
      out.push_back(prefix + (i < 10 ? "-0" : "-") + std::to_string(i));
    return out;
  }
  static std::string body(const std::vector<std::string>& input, const std::string& extra = {}) {
    return R"({"provider":"voyage","input":)" + json::serialize(json::value_from(input)) + extra +
           "}";
  }
  // Embeds `input`; checks the status, every row against the fake's vector for its text, and the
  // usage against the fake's count for every text, cached or not.
  void embeds(const std::vector<std::string>& input, const std::string& extra = {},
              const std::map<std::string, std::string>& headers = {}) {
    auto answer = emr.embed(key, body(input, extra), headers);
    ASSERT_EQ(answer.status, 200) << answer.body;
    auto j = answer.json();
    const auto& data = j.at("data").as_array();
    ASSERT_EQ(data.size(), input.size());
    std::int64_t tokens = 0;
    for (std::size_t i = 0; i < input.size(); ++i) {
      EXPECT_EQ(data[i].at("index").as_int64(), static_cast<std::int64_t>(i));
      EXPECT_TRUE(is_fakes_vector(data[i].at("embedding"), "voyage-3.5", input[i])) << i;
      tokens += emr::fake::fake_token_count(input[i]);
    }
    EXPECT_EQ(j.at("usage").at("total_tokens").as_int64(), tokens);
  }
  std::int64_t upstream_texts() const { return fake.stats().at("texts").as_int64(); }
  json::object cache_stats() const {
    auto answer = emr.admin("GET", "/admin/cache");
    EXPECT_EQ(answer.status, 200) << answer.body;
    return answer.json().as_object();
  }
};

std::vector<std::string> interleaved(const std::vector<std::string>& a,
                                     const std::vector<std::string>& b) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < a.size(); ++i) {
    out.push_back(a[i]);
    out.push_back(b[i]);
  }
  return out;
}

} // namespace

TEST_F(embedding_cache_stack, a_partly_seen_input_sends_only_its_new_texts_upstream) {
  auto seen = texts("seen", 10);
  embeds(seen);
  ASSERT_EQ(upstream_texts(), 10);
  fake.reset();
  embeds(interleaved(texts("new", 10), seen));
  EXPECT_EQ(upstream_texts(), 10) << "only the new texts";
  fake.reset();
  embeds(interleaved(seen, texts("new", 10)));
  EXPECT_EQ(fake.stats().at("calls").as_int64(), 0) << "every text was seen: no call at all";
  auto stats = cache_stats();
  EXPECT_EQ(stats.at("entries").as_int64(), 20);
  EXPECT_EQ(stats.at("hits").as_int64(), 30);
  EXPECT_EQ(stats.at("stored").as_int64(), 20);
}

TEST_F(embedding_cache_stack, batch_sub_requests_share_the_cache) {
  embeds(texts("seen", 4));
  fake.reset();
  auto answer =
      http_call(emr.port(), "POST", "/v1/embeddings/batch",
                R"({"requests":[{"id":"a","provider":"voyage","input":["seen-00","fresh-0"]},)"
                R"({"id":"b","provider":"voyage","input":["seen-03"]}]})",
                {{"Authorization", "Bearer " + key}});
  ASSERT_EQ(answer.status, 200) << answer.body;
  auto j = answer.json();
  const auto& results = j.at("results").as_array();
  ASSERT_EQ(results.size(), 2u);
  const auto& a = results[0].at("response").at("data").as_array();
  EXPECT_TRUE(is_fakes_vector(a.at(0).at("embedding"), "voyage-3.5", "seen-00"));
  EXPECT_TRUE(is_fakes_vector(a.at(1).at("embedding"), "voyage-3.5", "fresh-0"));
  EXPECT_TRUE(is_fakes_vector(results[1].at("response").at("data").at(0).at("embedding"),
                              "voyage-3.5", "seen-03"));
  EXPECT_EQ(upstream_texts(), 1);
}

TEST_F(embedding_cache_stack, a_caller_can_refuse_the_cache_by_header_or_by_field) {
  auto seen = texts("seen", 5);
  embeds(seen);
  fake.reset();
  embeds(seen, {}, {{"Cache-Control", "no-store"}});
  EXPECT_EQ(upstream_texts(), 5) << "no-store: fresh vectors";
  embeds(seen, R"(,"cache":false)");
  EXPECT_EQ(upstream_texts(), 10) << "\"cache\": false: fresh vectors";
  auto unseen = texts("unseen", 5);
  embeds(unseen, {}, {{"Cache-Control", "max-age=0, No-Store"}});
  embeds(unseen, R"(,"cache":false)");
  EXPECT_EQ(cache_stats().at("entries").as_int64(), 5) << "neither kept what it was sent";
  embeds(unseen, {}, {{"Cache-Control", "no-cache"}});
  EXPECT_EQ(upstream_texts(), 25) << "no-cache: fresh vectors, kept this time";
  embeds(unseen);
  EXPECT_EQ(upstream_texts(), 25);
  auto bad = emr.embed(key, body(seen, R"(,"cache":"no")"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json().at("error").at("param").as_string(), "cache");
}

TEST_F(embedding_cache_stack, operators_see_and_clear_the_cache) {
  embeds(texts("seen", 8));
  embeds(texts("seen", 8));
  auto stats = cache_stats();
  EXPECT_EQ(stats.at("entries").as_int64(), 8);
  EXPECT_EQ(stats.at("hits").as_int64(), 8);
  EXPECT_GT(stats.at("bytes").as_int64(), 8 * 1024 * 4) << "voyage-3.5 has 1,024 floats";
  EXPECT_EQ(stats.at("max_bytes").as_int64(), 256 * 1024 * 1024);
  auto metrics = http_call(emr.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("\nemr_cache_hits_total 8\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nemr_cache_entries 8\n"), std::string::npos);
  EXPECT_EQ(emr.stats().at("cache").at("hits").as_int64(), 8);

  auto server = emr.base_url();
  auto shown =
      run_cli({"cache", "stats", "--server", server, "--admin-secret", admin_secret, "--json"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  EXPECT_EQ(json::parse(shown.out).at("entries").as_int64(), 8);
  auto cleared = run_cli({"cache", "clear", "--server", server, "--admin-secret", admin_secret});
  ASSERT_EQ(cleared.code, 0) << cleared.err;
  EXPECT_EQ(cleared.out, "cleared 8 cached vectors\n");
  fake.reset();
  embeds(texts("seen", 8));
  EXPECT_EQ(upstream_texts(), 8) << "cleared: asked again";
  EXPECT_EQ(http_call(emr.port(), "DELETE", "/admin/cache").status, 401);
}

// Room for two of voyage-3.5's 1,024-float vectors in each of the cache's 16 shards: 32 in all.
struct small_cache : embedding_cache_stack {
  small_cache() : embedding_cache_stack{"[cache]\nmax_bytes = 180000\n"} {}
};

TEST_F(small_cache, the_byte_bound_is_never_exceeded) {
  for (int round = 0; round < 5; ++round) {
    embeds(texts("round" + std::to_string(round), 40));
    auto stats = cache_stats();
    EXPECT_LE(stats.at("bytes").as_int64(), 180000);
    EXPECT_EQ(stats.at("max_bytes").as_int64(), 180000);
  }
  auto stats = cache_stats();
  EXPECT_LE(stats.at("entries").as_int64(), 32);
  EXPECT_GE(stats.at("evicted").as_int64(), 168);
  EXPECT_EQ(stats.at("stored").as_int64(), 200);
  EXPECT_EQ(stats.at("stored").as_int64() - stats.at("evicted").as_int64(),
            stats.at("entries").as_int64());
}

// The cache also kept in the SQLite store: a restarted emr answers what the last run embedded.
struct stored_cache_stack : embedding_cache_stack {
  stored_cache_stack() : embedding_cache_stack{"[cache]\nstored_entries = 1000\n"} {}
};

TEST_F(stored_cache_stack, a_restarted_emr_answers_what_it_embedded_before) {
  auto seen = texts("before", 12);
  embeds(seen);
  ASSERT_EQ(upstream_texts(), 12);
  ASSERT_EQ(emr.stop(), 0); // what is not written yet is written at shutdown
  emr.start();
  fake.reset();
  auto fresh = texts("after", 12);
  embeds(interleaved(seen, fresh));
  EXPECT_EQ(upstream_texts(), 12) << "only the texts the last run never saw";
  auto stats = cache_stats();
  EXPECT_EQ(stats.at("restored").as_int64(), 12);
  EXPECT_EQ(stats.at("hits").as_int64(), 12);
  EXPECT_EQ(stats.at("stored_max_entries").as_int64(), 1000);
  EXPECT_EQ(stats.at("store_errors").as_int64(), 0);

  // Written within a second or two; stats then count all 24.
  for (int i = 0; i < 100 && cache_stats().at("stored_entries").as_int64() < 24; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  EXPECT_EQ(cache_stats().at("stored_entries").as_int64(), 24);
  EXPECT_EQ(cache_stats().at("saved").as_int64(), 12);
  auto metrics = http_call(emr.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("\nemr_cache_restored_total 12\n"), std::string::npos) << metrics;

  auto cleared =
      run_cli({"cache", "clear", "--server", emr.base_url(), "--admin-secret", admin_secret});
  ASSERT_EQ(cleared.code, 0) << cleared.err;
  EXPECT_EQ(cleared.out, "cleared 24 cached vectors in memory and 24 in the store\n");
  ASSERT_EQ(emr.stop(), 0);
  emr.start();
  fake.reset();
  embeds(seen);
  EXPECT_EQ(upstream_texts(), 12) << "cleared from the store too";
}

// Retries, poison isolation, malformed answers, the sin-bin and multi-provider policies,
// against the fake provider's fault injection. Asserts counts and order, never wall time,
// except that a retry honours Retry-After (measured by the fake's own clock).

#include "tests/integration/harness.hpp"
#include "tools/load_client.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace json = boost::json;
using namespace emr::testing;

namespace {

constexpr const char* fast_retries = R"(
[retry]
base_ms = 20
[health]
probe_interval_s = 1
)";

struct reliability_with : ::testing::Test {
  scratch_dir dir;
  fake_provider fake{dir};
  emr_server emr;
  std::string key;

  explicit reliability_with(const std::string& toml) : emr{dir, toml} {}

  void SetUp() override {
    ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
    key = emr.create_key("reliability");
  }

  void TearDown() override {
    // No request actor may outlive its caller.
    EXPECT_EQ(emr.stats().at("request_actors_live").as_int64(), 0);
  }

  http_answer embed_one(const std::string& text, const std::string& provider = "voyage") {
    return emr.embed(key, json::serialize(json::object{{"input", text}, {"provider", provider}}));
  }

  std::vector<json::object> calls() {
    std::vector<json::object> out;
    auto stats = fake.stats();
    for (const auto& c : stats.at("calls_log").as_array())
      out.push_back(c.as_object());
    return out;
  }
};

struct reliability : reliability_with {
  reliability() : reliability_with(fast_retries) {}
};

// Callers who wait two seconds at most.
struct impatient_callers : reliability_with {
  impatient_callers() : reliability_with("deadline_ms = 2000\n" + std::string(fast_retries)) {}
};

::testing::AssertionResult vector_matches(const http_answer& a, const std::string& model,
                                          const std::string& text) {
  return is_fakes_vector(a.json().at("data").at(0).at("embedding"), model, text);
}

} // namespace

TEST_F(reliability, a_429_with_retry_after_is_retried_no_earlier_than_asked) {
  fake.faults(R"({"script":[{"status":429,"retry_after":"1"}]})");
  auto a = embed_one("patience");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_TRUE(vector_matches(a, "voyage-3.5", "patience"));
  auto log = calls();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].at("status").as_int64(), 429);
  EXPECT_EQ(log[1].at("status").as_int64(), 200);
  EXPECT_GE(log[1].at("t_ms").to_number<double>() - log[0].at("t_ms").to_number<double>(), 1000.0);
}

TEST_F(reliability, a_call_refused_past_its_retries_is_queued_again_and_answered) {
  fake.faults(R"({"script":[{"status":429,"retry_after":"1"},{"status":429,"retry_after":"1"},
                            {"status":429,"retry_after":"1"}]})");
  auto a = embed_one("patient");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_TRUE(vector_matches(a, "voyage-3.5", "patient"));
  auto log = calls();
  ASSERT_EQ(log.size(), 4u) << "max_retries (2) + 1 attempts, then the call once more";
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(log[i].at("status").as_int64(), 429);
  EXPECT_EQ(log[3].at("status").as_int64(), 200);
  EXPECT_GE(log[3].at("t_ms").to_number<double>() - log[2].at("t_ms").to_number<double>(), 1000.0);
  auto batcher = emr.stats().at("providers").at(0);
  EXPECT_EQ(batcher.at("batches_requeued").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(batcher.at("batches_failed").to_number<std::uint64_t>(), 0u);
}

TEST_F(impatient_callers, a_persistent_429_reaches_a_caller_who_cannot_outlast_it) {
  fake.faults(R"({"then":{"status":429,"retry_after":"1"}})");
  auto a = embed_one("never");
  EXPECT_EQ(a.status, 429) << a.body;
  EXPECT_EQ(a.headers["Retry-After"], "1");
  EXPECT_EQ(a.json().at("error").at("type").as_string(), "rate_limited");
  // The second attempt's wait would end past the caller's two seconds: no third one.
  EXPECT_EQ(fake.stats().at("calls").as_int64(), 2);
}

TEST_F(reliability, retryable_5xx_are_retried_and_other_4xx_are_not) {
  fake.faults(R"({"script":[{"status":503},{"status":502}]})");
  auto a = embed_one("third time lucky");
  EXPECT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(fake.stats().at("calls").as_int64(), 3);
  fake.reset();
  fake.faults(R"({"script":[{"status":401}]})");
  auto b = embed_one("no retry");
  EXPECT_EQ(b.status, 502) << b.body;
  EXPECT_EQ(fake.stats().at("calls").as_int64(), 1);
}

TEST_F(reliability, one_poison_text_fails_only_its_caller) {
  std::vector<emr::load::caller> callers(50);
  for (std::size_t i = 0; i < callers.size(); ++i)
    callers[i].texts = {"caller " + std::to_string(i)};
  callers[17].texts = {"this one is __poison__"};
  auto results = emr::load::fire_concurrent(
      {emr.base_url(), "/v1/embeddings", key, {{"provider", "\"voyage\""}}, {}}, callers,
      emr::load::expectation{"voyage-3.5"});
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (i == 17) {
      EXPECT_EQ(results[i].status, 400) << results[i].error;
    } else {
      EXPECT_EQ(results[i].status, 200) << i << ": " << results[i].error;
      EXPECT_TRUE(results[i].vectors_ok) << i << ": " << results[i].error;
    }
  }
}

TEST_F(reliability, malformed_upstream_answers_fail_their_batch_and_later_batches_are_correct) {
  for (std::string kind :
       {"non_json", "wrong_count", "bad_index", "missing_index", "truncated", "nan", "oversized"}) {
    fake.faults(R"({"script":[{"malformed":")" + kind + R"("}]})");
    auto bad = embed_one("victim of " + kind);
    EXPECT_EQ(bad.status, 502) << kind << ": " << bad.body;
    EXPECT_EQ(bad.json().at("error").at("type").as_string(), "provider_error") << kind;
    EXPECT_NE(bad.body.find("unusable answer"), std::string::npos) << kind << ": " << bad.body;
    auto good = embed_one("after " + kind);
    ASSERT_EQ(good.status, 200) << kind << ": " << good.body;
    EXPECT_TRUE(vector_matches(good, "voyage-3.5", "after " + kind)) << kind;
  }
}

TEST(provider_key, one_read_from_a_secret_file_with_its_line_break_still_serves) {
  scratch_dir dir;
  fake_provider fake{dir};
  emr_server emr{dir, "", {{provider_key_env, "sk-test-provider-key-4f1e\n"}}};
  ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
  auto key = emr.create_key();
  auto a = emr.embed(key, R"({"input":"from a secret file","provider":"voyage"})");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_TRUE(vector_matches(a, "voyage-3.5", "from a secret file"));
}

TEST(deadline, a_caller_gets_504_by_its_deadline_and_leaves_no_actor_behind) {
  scratch_dir dir;
  fake_provider fake{dir};
  emr_server emr{dir, "deadline_ms = 500\n"};
  ASSERT_EQ(emr.add_provider("slow", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
  auto key = emr.create_key();
  fake.faults(R"({"script":[{"delay_ms":3000}]})");
  auto a = emr.embed(key, R"({"input":"too slow","provider":"slow"})");
  EXPECT_EQ(a.status, 504) << a.body;
  EXPECT_EQ(a.json().at("error").at("type").as_string(), "deadline_exceeded");
  EXPECT_EQ(emr.stats().at("request_actors_live").as_int64(), 0);
}

TEST(failover, a_failing_provider_is_sin_binned_skipped_and_restored_by_the_probe) {
  scratch_dir dir;
  fake_provider a{dir, {}, "a"};
  fake_provider b{dir, {}, "b"};
  emr_server emr{dir, fast_retries};
  ASSERT_EQ(emr.add_provider("A", "voyage", a.url("/v1/embeddings"), "voyage-3.5"), 201);
  ASSERT_EQ(emr.add_provider("B", "voyage", b.url("/v1/embeddings"), "voyage-3-large"), 201);
  auto key = emr.create_key();
  a.faults(R"({"then":{"status":500}})");
  auto any = [&](const std::string& text) {
    return emr.embed(key, json::serialize(json::object{
                              {"input", text}, {"providers", {"A", "B"}}, {"policy", "any"}}));
  };
  auto state_of_a = [&] {
    auto h = http_call(emr.port(), "GET", "/health/providers").json();
    return std::string{h.at("providers").at("A").at("state").as_string()};
  };
  for (int i = 0; i < 2; ++i) {
    auto r = any("served by B " + std::to_string(i));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json().at("provider").as_string(), "B");
    EXPECT_TRUE(vector_matches(r, "voyage-3-large", "served by B " + std::to_string(i)));
  }
  // Two batches of three attempts each: the fifth consecutive failure sin-binned A.
  EXPECT_EQ(state_of_a(), "sin-binned");
  auto calls_at_sin_bin = a.stats().at("calls").as_int64();
  EXPECT_EQ(calls_at_sin_bin, 6);
  for (int i = 0; i < 10; ++i) {
    auto r = any("skip A " + std::to_string(i));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json().at("provider").as_string(), "B");
  }
  // Probes run every second; they are A's only traffic while it is sin-binned.
  auto probes = a.stats().at("calls").as_int64() - calls_at_sin_bin;
  EXPECT_LE(probes, 3);
  a.reset();
  for (int i = 0; i < 100 && state_of_a() == "sin-binned"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  EXPECT_EQ(state_of_a(), "healthy");
  auto r = any("A is back");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("provider").as_string(), "A");
  EXPECT_TRUE(vector_matches(r, "voyage-3.5", "A is back"));
}

TEST(policy_all, answers_every_provider_or_names_the_ones_that_failed) {
  scratch_dir dir;
  fake_provider a{dir, {}, "a"};
  fake_provider b{dir, {}, "b"};
  emr_server emr{dir, fast_retries};
  ASSERT_EQ(emr.add_provider("A", "voyage", a.url("/v1/embeddings"), "voyage-3.5"), 201);
  ASSERT_EQ(emr.add_provider("B", "cohere", b.url("/v1/embed"), "embed-english-v3.0"), 201);
  auto key = emr.create_key();
  auto body = R"({"input":["x","y"],"providers":["A","B"],"policy":"all"})";
  auto ok = emr.embed(key, body);
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto results = ok.json().at("results").as_object();
  EXPECT_EQ(results.size(), 2u);
  EXPECT_EQ(results.at("A").at("data").as_array().size(), 2u);
  EXPECT_EQ(results.at("B").at("data").as_array().size(), 2u);
  EXPECT_TRUE(is_fakes_vector(results.at("B").at("data").at(1).at("embedding"),
                              "embed-english-v3.0", "y", "search_document"));
  b.faults(R"({"then":{"status":400}})");
  // Fresh texts: x and y would be answered from the call that just carried them (reuse_ms).
  auto failed = emr.embed(key, R"({"input":["p","q"],"providers":["A","B"],"policy":"all"})");
  EXPECT_NE(failed.status, 200);
  EXPECT_NE(failed.body.find("B"), std::string::npos) << failed.body;
}

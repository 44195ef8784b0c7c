// The OpenAI-compatible surface, observability and graceful drain, against real processes.

#include "tests/integration/harness.hpp"
#include "tools/load_client.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <thread>

namespace json = boost::json;
using namespace emr::testing;

namespace {

struct standard_api : voyage_stack {
  emr::load::endpoint openai_style() const {
    return {emr.base_url(), "/v1/embeddings", key, {{"model", "\"voyage\""}}, {}};
  }
};

} // namespace

TEST_F(standard_api, float_and_base64_callers_share_calls_and_each_get_their_format) {
  std::vector<emr::load::caller> callers(200);
  for (std::size_t i = 0; i < callers.size(); ++i) {
    callers[i].texts = {"mixed " + std::to_string(i)};
    callers[i].encoding_format = i % 2 ? "base64" : (i % 4 ? "float" : "");
  }
  auto results =
      emr::load::fire_concurrent(openai_style(), callers, emr::load::expectation{"voyage-3.5"});
  for (const auto& r : results)
    ASSERT_TRUE(r.status == 200 && r.vectors_ok) << r.status << " " << r.error;
  // Formats are the callers' business: the fake sees only emr's own base64 requests, merged.
  EXPECT_EQ(fake.stats().at("texts").as_int64(), 200);
  if (!sanitized_build) {
    EXPECT_LE(fake.stats().at("calls").as_int64(), 5);
  }
  auto b64 = emr.embed(key, R"({"model":"voyage","input":"one","encoding_format":"base64"})");
  ASSERT_EQ(b64.status, 200);
  EXPECT_TRUE(b64.json().at("data").at(0).at("embedding").is_string());
  auto plain = emr.embed(key, R"({"model":"voyage","input":"one"})");
  EXPECT_TRUE(plain.json().at("data").at(0).at("embedding").is_array()) << "float is the default";
}

TEST_F(standard_api, model_routes_by_provider_name_provider_slash_model_or_a_unique_model) {
  for (std::string model : {"voyage", "voyage/voyage-3.5", "voyage-3.5"}) {
    auto a = emr.embed(key, json::serialize(json::object{{"model", model}, {"input", "routed"}}));
    ASSERT_EQ(a.status, 200) << model << ": " << a.body;
    auto j = a.json();
    EXPECT_EQ(j.at("provider").as_string(), "voyage");
    EXPECT_EQ(j.at("object").as_string(), "list");
    EXPECT_EQ(j.at("data").at(0).at("object").as_string(), "embedding");
    EXPECT_GT(j.at("usage").at("prompt_tokens").as_int64(), 0);
  }
  auto other_model = emr.embed(key, R"({"model":"voyage/voyage-code-3","input":"code"})");
  ASSERT_EQ(other_model.status, 200) << other_model.body;
  auto answer = other_model.json();
  EXPECT_TRUE(is_fakes_vector(answer.at("data").at(0).at("embedding"), "voyage-code-3", "code"));
  EXPECT_EQ(answer.at("model").as_string(), "voyage-code-3");

  auto unknown = emr.embed(key, R"({"model":"no-such-model","input":"x"})");
  EXPECT_EQ(unknown.status, 404);
  auto e = unknown.json().at("error");
  EXPECT_EQ(e.at("code").as_string(), "model_not_found");
  EXPECT_TRUE(e.as_object().contains("param"));
  ASSERT_EQ(emr.add_provider("twin", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
  auto ambiguous = emr.embed(key, R"({"model":"voyage-3.5","input":"x"})");
  EXPECT_EQ(ambiguous.status, 400);
  EXPECT_NE(ambiguous.body.find("twin"), std::string::npos) << ambiguous.body;
}

TEST_F(standard_api, provider_and_model_together_serve_each_form_that_names_the_same_model) {
  for (std::string model : {"voyage", "voyage-3.5", "voyage/voyage-3.5"}) {
    auto text = "both as " + model;
    auto a = emr.embed(key, json::serialize(json::object{
                                {"provider", "voyage"}, {"model", model}, {"input", text}}));
    ASSERT_EQ(a.status, 200) << model << ": " << a.body;
    EXPECT_TRUE(is_fakes_vector(a.json().at("data").at(0).at("embedding"), "voyage-3.5", text))
        << model;
  }
  auto other =
      emr.embed(key, R"({"provider":"voyage","model":"voyage/voyage-code-3","input":"c"})");
  ASSERT_EQ(other.status, 200) << other.body;
  EXPECT_TRUE(is_fakes_vector(other.json().at("data").at(0).at("embedding"), "voyage-code-3", "c"));
  EXPECT_EQ(fake.stats().at("texts").as_int64(), 4);
  // A model that names no model, or no provider before its slash, is not the provider's.
  for (std::string model : {"", "/voyage-code-3", "voyage/", "voyage-code-3"}) {
    auto refused = emr.embed(key, json::serialize(json::object{
                                      {"provider", "voyage"}, {"model", model}, {"input", "x"}}));
    EXPECT_EQ(refused.status, 400) << model << ": " << refused.body;
    EXPECT_EQ(refused.json().at("error").at("param").as_string(), "model") << model;
  }
  auto bare_slash = emr.embed(key, R"({"model":"voyage/","input":"x"})");
  EXPECT_EQ(bare_slash.status, 404) << bare_slash.body;
  EXPECT_EQ(fake.stats().at("texts").as_int64(), 4);
}

TEST_F(standard_api, dimensions_shorten_the_vectors) {
  auto dims = emr.embed(key, R"({"model":"voyage","input":"short","dimensions":256})");
  ASSERT_EQ(dims.status, 200) << dims.body;
  EXPECT_EQ(dims.json().at("data").at(0).at("embedding").as_array().size(), 256u);
}

TEST_F(standard_api, request_ids_are_echoed_and_generated) {
  auto given =
      emr.embed(key, R"({"model":"voyage","input":"traced"})", {{"X-Request-Id", "trace-42"}});
  EXPECT_EQ(given.headers["X-Request-Id"], "trace-42");
  auto generated = emr.embed(key, R"({"model":"voyage","input":"untraced"})");
  EXPECT_TRUE(generated.headers["X-Request-Id"].starts_with("req_"));
  // A lone caller's id travels upstream with its call.
  auto stats = fake.stats();
  bool seen = false;
  for (const auto& c : stats.at("calls_log").as_array())
    seen = seen || c.at("request_id").as_string() == "trace-42";
  EXPECT_TRUE(seen);
  ASSERT_EQ(emr.stop(), 0);
  auto log = emr.process().log();
  EXPECT_NE(log.find("request_id=trace-42"), std::string::npos);
  EXPECT_EQ(log.find("traced\""), std::string::npos) << "inputs are never logged";
}

TEST_F(standard_api, metrics_pass_promtool_and_agree_with_the_fake) {
  std::vector<emr::load::caller> callers(300);
  for (std::size_t i = 0; i < callers.size(); ++i)
    callers[i].texts = {"metric " + std::to_string(i)};
  auto results =
      emr::load::fire_concurrent(openai_style(), callers, emr::load::expectation{"voyage-3.5"});
  for (const auto& r : results)
    ASSERT_TRUE(r.vectors_ok) << r.error;
  auto metrics = http_call(emr.port(), "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  auto file = dir.path / "metrics.txt";
  std::ofstream{file} << metrics.body;
  auto check = std::system(("promtool check metrics < " + file.string() + " > " +
                            (dir.path / "promtool.out").string() + " 2>&1")
                               .c_str());
  std::ifstream promtool_out{dir.path / "promtool.out"};
  std::string complaints{std::istreambuf_iterator<char>{promtool_out}, {}};
  EXPECT_EQ(check, 0) << complaints;
  auto value = [&](const std::string& series) {
    auto at = metrics.body.find("\n" + series + " ");
    EXPECT_NE(at, std::string::npos) << series;
    return at == std::string::npos ? -1.0 : std::stod(metrics.body.substr(at + series.size() + 2));
  };
  auto fake_stats = fake.stats();
  EXPECT_EQ(value(R"(emr_upstream_calls_total{provider="voyage",outcome="success"})"),
            fake_stats.at("calls").as_int64());
  EXPECT_EQ(value(R"(emr_upstream_texts_total{provider="voyage"})"),
            fake_stats.at("texts").as_int64());
  EXPECT_EQ(value(R"(emr_caller_requests_total{provider="voyage",status="200"})"), 300);
  EXPECT_EQ(value(R"(emr_texts_total{provider="voyage"})"), 300);
  EXPECT_EQ(value("emr_caller_latency_seconds_count"), 300);
  EXPECT_EQ(value("emr_request_actors"), 0);
}

TEST_F(standard_api, sigterm_during_a_burst_answers_every_caller_and_exits_zero) {
  fake.reset();
  std::vector<emr::load::caller> callers(1000);
  for (std::size_t i = 0; i < callers.size(); ++i)
    callers[i].texts = {"drain " + std::to_string(i)};
  auto burst = std::async(std::launch::async, [&] {
    return emr::load::fire_concurrent(openai_style(), callers,
                                      emr::load::expectation{"voyage-3.5"});
  });
  // Mid-burst: once the first upstream call has been made, callers are queued and in flight.
  for (int i = 0; i < 2000 && fake.stats().at("calls").as_int64() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  ASSERT_GT(fake.stats().at("calls").as_int64(), 0);
  emr.process().signal(SIGTERM);
  auto results = burst.get();
  std::size_t ok = 0;
  std::map<std::string, int> failures;
  for (const auto& r : results) {
    ok += r.status == 200 && r.vectors_ok;
    if (!(r.status == 200 && r.vectors_ok))
      ++failures[std::to_string(r.status) + " " + r.error.substr(0, 120)];
  }
  EXPECT_EQ(ok, 1000u);
  for (const auto& [what, n] : failures)
    ADD_FAILURE() << n << " x " << what;
  auto exit_code = emr.process().wait(std::chrono::seconds{40});
  EXPECT_EQ(exit_code, 0);
  if (exit_code != 0 || ok != 1000u) {
    // The log without the answered callers' access lines, which are a thousand alike.
    std::istringstream log{emr.process().log()};
    std::string unusual;
    for (std::string line; std::getline(log, line);)
      if (line.find(" 200 ") == std::string::npos)
        unusual += line + "\n";
    ADD_FAILURE() << "emr's log, but for answered callers:\n" << unusual;
  }
}

TEST_F(standard_api, openai_and_openai_compatible_providers_serve_through_the_same_api) {
  ASSERT_EQ(
      emr.add_provider("openai", "openai", fake.url("/v1/embeddings"), "text-embedding-3-small"),
      201);
  ASSERT_EQ(emr.add_provider("selfhosted", "openai-compatible", fake.url("/openai/v1/embeddings"),
                             "text-embedding-3-large", 16),
            201);
  for (auto [provider, model, dims] : {std::tuple{"openai", "text-embedding-3-small", 1536},
                                       std::tuple{"selfhosted", "text-embedding-3-large", 3072}}) {
    auto a =
        emr.embed(key, json::serialize(json::object{{"model", provider}, {"input", {"a", "b"}}}));
    ASSERT_EQ(a.status, 200) << provider << ": " << a.body;
    EXPECT_TRUE(is_fakes_vector(a.json().at("data").at(1).at("embedding"), model, "b", "", dims))
        << provider;
  }
  auto shortened = emr.embed(key, R"({"model":"openai","input":"short","dimensions":64})");
  ASSERT_EQ(shortened.status, 200) << shortened.body;
  EXPECT_EQ(shortened.json().at("data").at(0).at("embedding").as_array().size(), 64u);
}

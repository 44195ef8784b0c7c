// A failing sole provider is sin-binned like any other: past the failure threshold its callers
// get a 503 with Retry-After at once, the provider sees nothing but recovery probes, and the first
// probe comes halfway through the sentence, so a provider that is back early serves again early.

#include "tests/integration/harness.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace json = boost::json;
using namespace emr::testing;

namespace {

// Three failures (one caller's three attempts) sin-bin the provider for 6 s. Probes would come
// every 60 s, but a sentence is probed halfway through at the latest: 3 s in.
constexpr const char* sole_provider_config = R"(
[retry]
base_ms = 20
[health]
failure_threshold = 3
sin_bin_s = 6
probe_interval_s = 60
)";

bool is_probe(const json::object& call) {
  return std::string_view{call.at("request_id").as_string()}.starts_with("emr-") &&
         call.at("texts").as_int64() == 1;
}

} // namespace

TEST(sole_provider, is_sin_binned_answers_503_at_once_and_is_probed_back) {
  scratch_dir dir;
  fake_provider fake{dir};
  emr_server emr{dir, sole_provider_config};
  ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
  auto key = emr.create_key();
  auto embed = [&](const std::string& text, const std::string& id) {
    return emr.embed(key, json::serialize(json::object{{"input", text}, {"provider", "voyage"}}),
                     {{"X-Request-Id", id}});
  };
  auto state = [&] {
    auto h = http_call(emr.port(), "GET", "/health/providers").json();
    return std::string{h.at("providers").at("voyage").at("state").as_string()};
  };

  fake.faults(R"({"then":{"status":500}})");
  auto first = embed("the one who pays", "sole-first");
  EXPECT_EQ(first.status, 502) << first.body;
  for (int i = 0; i < 50 && state() != "sin-binned"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  ASSERT_EQ(state(), "sin-binned");
  EXPECT_EQ(http_call(emr.port(), "GET", "/health").status, 503) << "no provider can serve";

  for (int i = 0; i < 5; ++i) {
    auto r = embed("turned away " + std::to_string(i), "sole-later-" + std::to_string(i));
    ASSERT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.json().at("error").at("type").as_string(), "provider_unavailable");
    ASSERT_TRUE(r.headers.count("Retry-After")) << r.body;
    auto retry_after = std::stoi(r.headers.at("Retry-After"));
    EXPECT_GE(retry_after, 1);
    EXPECT_LE(retry_after, 6);
  }
  // The provider saw the first caller's three attempts and nothing else but probes.
  int first_calls = 0;
  auto calls = fake.stats();
  for (const auto& c : calls.at("calls_log").as_array()) {
    const auto& call = c.as_object();
    if (call.at("request_id").as_string() == "sole-first")
      ++first_calls;
    else
      EXPECT_TRUE(is_probe(call)) << json::serialize(call);
  }
  EXPECT_EQ(first_calls, 3);

  // Healed well before the sentence ends: the halfway probe finds it back. Had the sin-bin
  // simply run out, the provider would be "degraded" (one failure from another sin-bin).
  fake.reset();
  for (int i = 0; i < 100 && state() == "sin-binned"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  EXPECT_EQ(state(), "healthy");
  auto probes = fake.stats().at("calls_log").as_array();
  ASSERT_EQ(probes.size(), 1u);
  EXPECT_TRUE(is_probe(probes.at(0).as_object()));

  auto back = embed("served again", "sole-back");
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_TRUE(
      is_fakes_vector(back.json().at("data").at(0).at("embedding"), "voyage-3.5", "served again"));
}

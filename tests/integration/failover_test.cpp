// Failover that respects the caller's deadline: a provider paused for a day or hung costs an
// `any` caller at most its share of the deadline, and nothing is sent for callers who are gone.
// Short deadlines keep each test to a few seconds.

#include "tests/integration/harness.hpp"
#include "tools/load_client.hpp"

#include <gtest/gtest.h>

#include <thread>

using namespace emr::testing;

namespace {

// Providers A (voyage-3.5) and B (voyage-3-large), each a fake of its own, behind one emr.
struct two_providers {
  scratch_dir dir;
  fake_provider a{dir, {}, "a"};
  fake_provider b{dir, {}, "b"};
  emr_server emr;
  std::string key;

  explicit two_providers(std::string config) : emr{dir, std::move(config)} {
    EXPECT_EQ(emr.add_provider("A", "voyage", a.url("/v1/embeddings"), "voyage-3.5"), 201);
    EXPECT_EQ(emr.add_provider("B", "voyage", b.url("/v1/embeddings"), "voyage-3-large"), 201);
    key = emr.create_key("failover");
  }

  // One caller per text, all at once, of A and B under `any` or of A alone; vectors are checked
  // against the provider that served them.
  std::vector<emr::load::result> call(const std::vector<std::string>& texts, bool any_of_a_and_b) {
    emr::load::endpoint target{emr.base_url(), "/v1/embeddings", key, {}, {}};
    if (any_of_a_and_b)
      target.extra_fields = {{"providers", R"(["A","B"])"}, {"policy", "\"any\""}};
    else
      target.extra_fields = {{"provider", "\"A\""}};
    emr::load::expectation served_by_a, served_by_b, expect;
    served_by_a.model = "voyage-3.5";
    served_by_a.provider = "A";
    served_by_b.model = "voyage-3-large";
    served_by_b.provider = "B";
    expect.providers = {served_by_a, served_by_b};
    std::vector<emr::load::caller> callers;
    for (const auto& text : texts)
      callers.push_back(emr::load::caller{{text}});
    return emr::load::fire_concurrent(target, callers, expect);
  }

  std::string state_of_a() {
    auto h = http_call(emr.port(), "GET", "/health/providers").json();
    return std::string{h.at("providers").at("A").at("state").as_string()};
  }
};

} // namespace

TEST(failover,
     a_provider_paused_for_a_day_is_skipped_at_once_and_a_sole_caller_told_when_to_return) {
  // The deadline is long: a caller that waited on A for its share would take five seconds.
  two_providers p{"deadline_ms = 10000\n"};
  p.a.faults(R"({"script":[{"status":429,"retry_after":"86400"}]})");
  auto first = p.call({"the one that meets the 429"}, true);
  ASSERT_EQ(first[0].status, 200) << first[0].error;
  EXPECT_TRUE(first[0].vectors_ok) << first[0].error;
  EXPECT_EQ(first[0].provider, "B");
  for (int i = 0; i < 100 && p.state_of_a() != "paused"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  ASSERT_EQ(p.state_of_a(), "paused");

  auto later = p.call({"later 1", "later 2", "later 3"}, true);
  for (const auto& r : later) {
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_TRUE(r.vectors_ok) << r.error;
    EXPECT_EQ(r.provider, "B");
    EXPECT_LT(r.latency_ms, 2500.0) << "A was skipped at once, not after its share of the deadline";
  }
  auto sole = p.call({"only A will do"}, false);
  EXPECT_EQ(sole[0].status, 429) << sole[0].error;
  EXPECT_EQ(sole[0].retry_after, "86400");
  EXPECT_LT(sole[0].latency_ms, 2500.0) << "told at once, not at its deadline";
  EXPECT_EQ(p.a.stats().at("calls").as_int64(), 1) << "A saw only the call that paused it";
}

TEST(failover, a_hung_provider_costs_an_any_caller_only_its_share_of_the_deadline) {
  // A answers only after 1.5 s, well within the upstream timeout but past every caller's deadline.
  two_providers p{"deadline_ms = 1000\n[upstream]\ntimeout_s = 5\n"};
  p.a.faults(R"({"then":{"delay_ms":1500}})");
  auto results = p.call({"hung 1", "hung 2"}, true);
  for (const auto& r : results) {
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_TRUE(r.vectors_ok) << r.error;
    EXPECT_EQ(r.provider, "B");
  }
}

TEST(failover, once_its_callers_are_gone_a_hung_provider_is_sent_nothing_more) {
  // One call at a time; each attempt gives up after 1 s, and the fake answers after 1.2 s, so a
  // retry would follow at once, and the callers queued behind the first call would be sent next.
  two_providers p{"deadline_ms = 800\n[upstream]\ntimeout_s = 1\n[retry]\nbase_ms = 20\n"
                  "[batching]\ninitial_concurrency = 1\nmax_concurrency = 1\n"};
  p.a.faults(R"({"then":{"delay_ms":1200}})");
  auto started = std::chrono::steady_clock::now();
  auto results = p.call({"gone 1", "gone 2", "gone 3"}, false);
  for (const auto& r : results)
    EXPECT_EQ(r.status, 504) << r.error;
  // The fake counts a call when it answers: every call sent by 1.2 s after the callers' deadline
  // has been counted 2.6 s after they started.
  std::this_thread::sleep_until(started + std::chrono::milliseconds{2600});
  EXPECT_EQ(p.a.stats().at("calls").as_int64(), 1) << "only the call sent while its callers waited";
  EXPECT_EQ(p.emr.stats().at("request_actors_live").as_int64(), 0);
}

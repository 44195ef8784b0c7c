// Authentication under attack, against a live `emr serve` with OWASP's argon2 parameters: a burst
// of one wrong secret costs one argon2 run, distinct guesses at one key id are refused with 429
// and Retry-After before argon2 runs, and the key's holder is served throughout. Counts argon2
// runs through /admin/stats and /metrics; never times anything.

#include "tests/integration/harness.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace json = boost::json;
using namespace emr::testing;

namespace {

constexpr const char* owasp_auth = R"(
[auth]
argon2_t_cost = 2
argon2_m_cost_kib = 19456
failures_per_minute_per_key = 5
)";

struct hostile_auth : voyage_stack {
  hostile_auth() : voyage_stack(owasp_auth) {}

  void SetUp() override {
    voyage_stack::SetUp();
    ASSERT_TRUE(holder_served("before"));
  }

  std::uint64_t auth_count(const char* name) {
    return emr.stats().at("auth").at(name).to_number<std::uint64_t>();
  }

  /// The holder's request for `text` answered 200 with exactly the fake's vector for it.
  bool holder_served(const std::string& text) {
    auto a = emr.embed(key, json::serialize(json::object{{"input", text}, {"provider", "voyage"}}));
    if (a.status != 200)
      return false;
    return static_cast<bool>(
        is_fakes_vector(a.json().at("data").at(0).at("embedding"), "voyage-3.5", text));
  }

  /// The holder's key with another, wrong secret (distinct for each n).
  std::string guess(int n) const {
    auto suffix = "Zz" + std::to_string(1000 + n);
    auto wrong = key.substr(0, key.size() - suffix.size()) + suffix;
    return wrong == key
               ? key.substr(0, key.size() - suffix.size()) + "Yy" + std::to_string(1000 + n)
               : wrong;
  }

  /// Serves the holder from another thread, at least once and until stopped, counting requests
  /// served and not served right.
  std::jthread holder_meanwhile(std::atomic<int>& served, std::atomic<int>& missed) {
    return std::jthread{[&, this](std::stop_token stop) {
      for (int i = 0;; ++i) {
        ++(holder_served("meanwhile " + std::to_string(i)) ? served : missed);
        if (stop.stop_requested())
          break;
      }
    }};
  }
};

TEST_F(hostile_auth, fifty_concurrent_requests_with_one_wrong_secret_cost_one_argon2_run) {
  auto runs_before = auth_count("argon2_verifications");
  auto wrong = guess(1);
  std::atomic<int> served{0}, missed{0};
  std::vector<http_answer> answers(50);
  {
    auto holder = holder_meanwhile(served, missed);
    std::vector<std::jthread> attackers;
    for (auto& answer : answers)
      attackers.emplace_back(
          [&] { answer = emr.embed(wrong, R"({"input":"x","provider":"voyage"})"); });
  }
  for (const auto& a : answers) {
    EXPECT_EQ(a.status, 401) << a.body;
    EXPECT_EQ(a.body, answers.front().body);
  }
  EXPECT_EQ(answers.front().json().at("error").at("message").as_string(), "invalid API key");
  EXPECT_EQ(auth_count("argon2_verifications") - runs_before, 1u);
  EXPECT_EQ(auth_count("failures"), 50u);
  EXPECT_EQ(missed.load(), 0);
  EXPECT_GT(served.load(), 0);
  auto metrics = http_call(emr.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("\nemr_auth_argon2_verifications_total " +
                         std::to_string(runs_before + 1) + "\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("\nemr_auth_failures_total 50\n"), std::string::npos);
}

TEST_F(hostile_auth, distinct_wrong_secrets_get_429_with_retry_after_while_the_holder_is_served) {
  auto runs_before = auth_count("argon2_verifications");
  std::atomic<int> served{0}, missed{0};
  std::vector<http_answer> answers;
  {
    auto holder = holder_meanwhile(served, missed);
    for (int i = 0; i < 10; ++i)
      answers.push_back(emr.embed(guess(i), R"({"input":"x","provider":"voyage"})"));
  }
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(answers[i].status, 401) << i << answers[i].body;
  for (int i = 5; i < 10; ++i) {
    ASSERT_EQ(answers[i].status, 429) << i << answers[i].body;
    auto error = answers[i].json().at("error");
    EXPECT_EQ(error.at("type").as_string(), "rate_limited");
    EXPECT_EQ(error.at("code").as_string(), "too_many_failed_attempts");
    // 5 a minute, spent at once: the next one is earned back within 12 s.
    auto retry_after = std::stoi(answers[i].headers.at("Retry-After"));
    EXPECT_GE(retry_after, 1);
    EXPECT_LE(retry_after, 12);
  }
  EXPECT_EQ(auth_count("argon2_verifications") - runs_before, 5u) << "refused before argon2";
  EXPECT_EQ(auth_count("rate_limited"), 5u);
  EXPECT_EQ(missed.load(), 0);
  EXPECT_GT(served.load(), 0);
  EXPECT_TRUE(holder_served("after"));
}

} // namespace

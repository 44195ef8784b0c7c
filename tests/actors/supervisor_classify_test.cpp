// classify(): how one upstream attempt's reply becomes a verdict for the retry supervisor.

#include "actors/supervisor.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace {

using namespace std::chrono_literals;

const auto now = std::chrono::system_clock::from_time_t(1704067200);

upstream_reply reply(int status, std::string message = {}) {
  upstream_reply r;
  r.status = status;
  r.error_message = std::move(message);
  return r;
}

shared_matrix one_row() {
  auto m = std::make_shared<embedding_matrix>();
  m->rows = 1;
  m->dims = 2;
  m->values = {0.5f, -0.5f};
  return m;
}

TEST(classify, success_with_matrix) {
  for (int status : {200, 201, 299}) {
    auto r = reply(status);
    r.matrix = one_row();
    auto v = classify(r, "voy", now);
    EXPECT_EQ(v.outcome, outcome_class::success) << status;
    EXPECT_FALSE(v.retry);
    EXPECT_FALSE(v.error);
    EXPECT_FALSE(v.splittable);
  }
}

TEST(classify, success_without_matrix_is_an_unusable_answer_not_retried) {
  auto v = classify(reply(200, "upstream returned the same embedding index twice"), "voy", now);
  EXPECT_EQ(v.outcome, outcome_class::server_error);
  EXPECT_FALSE(v.retry);
  EXPECT_FALSE(v.splittable);
  ASSERT_TRUE(v.error);
  EXPECT_EQ(v.error->status, 502);
  EXPECT_EQ(v.error->type, "provider_error");
  EXPECT_EQ(v.error->provider, "voy");
  EXPECT_NE(v.error->message.find("same embedding index twice"), std::string::npos);
  EXPECT_NE(v.error->message.find("'voy'"), std::string::npos);
}

TEST(classify, transport_failure_is_a_retryable_server_error) {
  upstream_reply r;
  r.transport_error = "Connection";
  auto v = classify(r, "oai", now);
  EXPECT_EQ(v.outcome, outcome_class::server_error);
  EXPECT_TRUE(v.retry);
  EXPECT_FALSE(v.splittable);
  ASSERT_TRUE(v.error);
  EXPECT_EQ(v.error->status, 502);
  EXPECT_EQ(v.error->type, "provider_error");
  EXPECT_NE(v.error->message.find("unreachable"), std::string::npos);
  EXPECT_NE(v.error->message.find("Connection"), std::string::npos);
}

TEST(classify, rate_limit_is_retryable_with_the_servers_wait) {
  auto r = reply(429, "slow down");
  r.retry_after = "2";
  auto v = classify(r, "co", now);
  EXPECT_EQ(v.outcome, outcome_class::rate_limited);
  EXPECT_TRUE(v.retry);
  EXPECT_FALSE(v.splittable);
  EXPECT_EQ(v.server_wait, std::chrono::milliseconds{2000});
  ASSERT_TRUE(v.error);
  EXPECT_EQ(v.error->status, 429);
  EXPECT_EQ(v.error->type, "rate_limited");
  EXPECT_EQ(v.error->retry_after_ms, 2000);
  EXPECT_NE(v.error->message.find("slow down"), std::string::npos);

  r.retry_after_ms = "750";
  v = classify(r, "co", now);
  EXPECT_EQ(v.server_wait, std::chrono::milliseconds{750});
  EXPECT_EQ(v.error->retry_after_ms, 750);
}

TEST(classify, rate_limit_without_header_names_no_wait) {
  // The batcher tells the callers when to come back (a second at least): a wait invented here
  // would read to its budget as one the provider named.
  auto v = classify(reply(429), "co", now);
  EXPECT_EQ(v.server_wait, std::nullopt);
  ASSERT_TRUE(v.error);
  EXPECT_EQ(v.error->retry_after_ms, -1);
}

TEST(classify, server_errors_are_retryable) {
  // 520-524: a proxy in front of the provider; 529: an overloaded API; 408, 409: repeatable.
  for (int status : {500, 502, 503, 504, 507, 520, 524, 529, 408, 409}) {
    auto v = classify(reply(status, "oops"), "voy", now);
    EXPECT_EQ(v.outcome, outcome_class::server_error) << status;
    EXPECT_TRUE(v.retry) << status;
    EXPECT_FALSE(v.splittable) << status;
    ASSERT_TRUE(v.error);
    EXPECT_EQ(v.error->status, 502) << status;
    EXPECT_EQ(v.error->type, "provider_error");
    EXPECT_NE(v.error->message.find(std::to_string(status)), std::string::npos);
  }
}

TEST(classify, input_rejections_are_splittable_caller_errors) {
  for (int status : {400, 413, 422}) {
    auto v = classify(reply(status, "input[3] is too long"), "voy", now);
    EXPECT_EQ(v.outcome, outcome_class::caller_error) << status;
    EXPECT_FALSE(v.retry) << status;
    EXPECT_TRUE(v.splittable) << status;
    ASSERT_TRUE(v.error);
    EXPECT_EQ(v.error->status, 400) << status;
    EXPECT_EQ(v.error->type, "invalid_request");
    EXPECT_EQ(v.error->provider, "voy");
    EXPECT_NE(v.error->message.find("input[3] is too long"), std::string::npos) << v.error->message;
  }
}

TEST(classify, a_5xx_the_provider_will_never_take_counts_against_it_but_is_not_retried) {
  for (int status : {501, 505}) {
    auto v = classify(reply(status, "not implemented"), "co", now);
    EXPECT_EQ(v.outcome, outcome_class::server_error) << status;
    EXPECT_FALSE(v.retry) << status;
    ASSERT_TRUE(v.error);
    EXPECT_EQ(v.error->status, 502) << status;
  }
}

TEST(classify, a_refused_key_or_account_counts_against_the_provider_and_is_not_retried) {
  for (int status : {401, 402}) {
    auto v = classify(reply(status, "invalid api token"), "co", now);
    EXPECT_EQ(v.outcome, outcome_class::server_error) << status;
    EXPECT_FALSE(v.retry) << status;
    EXPECT_FALSE(v.splittable) << status;
    ASSERT_TRUE(v.error);
    EXPECT_EQ(v.error->status, 502) << status;
    EXPECT_EQ(v.error->type, "provider_error");
  }
}

// A caller naming `provider/model` can provoke these for a model of its own choosing: they must
// not sin-bin the provider for everyone else.
TEST(classify, model_errors_are_502_and_count_against_nobody) {
  for (int status : {403, 404}) {
    auto v = classify(reply(status, "model not found"), "co", now);
    EXPECT_EQ(v.outcome, outcome_class::caller_error) << status;
    EXPECT_FALSE(v.retry) << status;
    EXPECT_FALSE(v.splittable) << status;
    ASSERT_TRUE(v.error);
    EXPECT_EQ(v.error->status, 502) << status;
    EXPECT_EQ(v.error->type, "provider_error");
    EXPECT_NE(v.error->message.find("model not found"), std::string::npos);
  }
}

} // namespace
} // namespace emr

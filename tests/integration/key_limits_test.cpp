// Per-key limits on a live `emr serve`: set at create or update (admin API and CLI), refused with
// 429 and Retry-After before any upstream work, and never touching another key.

#include "tests/integration/harness.hpp"

#include <gtest/gtest.h>

namespace json = boost::json;
using namespace emr::testing;

namespace {

struct key_limits_stack : voyage_stack {
  // Created through the admin API with the given limit fields; returns (id, token).
  std::pair<std::int64_t, std::string> limited_key(const std::string& name,
                                                   const std::string& limits) {
    auto answer = emr.admin("POST", "/admin/keys", R"({"name":")" + name + R"(",)" + limits + "}");
    EXPECT_EQ(answer.status, 201) << answer.body;
    auto j = answer.json();
    return {j.at("id").as_int64(), std::string{j.at("key").as_string()}};
  }
  http_answer embed_one(const std::string& token, const std::string& text) {
    return emr.embed(token, R"({"provider":"voyage","input":")" + text + R"("})");
  }
};

} // namespace

TEST_F(key_limits_stack, requests_past_a_keys_minute_get_429_before_any_upstream_call) {
  auto [id, token] = limited_key("three-a-minute", R"("requests_per_minute":3)");
  auto shown = emr.admin("GET", "/admin/keys").json();
  bool listed = false;
  for (const auto& k : shown.at("keys").as_array())
    if (k.at("id").as_int64() == id) {
      listed = true;
      EXPECT_EQ(k.at("requests_per_minute").as_int64(), 3);
      EXPECT_EQ(k.at("tokens_per_day").as_int64(), 0);
    }
  EXPECT_TRUE(listed);
  fake.reset();
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(embed_one(token, "limited " + std::to_string(i)).status, 200);
  auto refused = embed_one(token, "limited 3");
  ASSERT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(refused.json().at("error").at("code").as_string(), "key_limit");
  auto wait = std::stoi(refused.headers.at("Retry-After"));
  EXPECT_GE(wait, 1);
  EXPECT_LE(wait, 60);
  EXPECT_EQ(fake.stats().at("texts").as_int64(), 3) << "the refused text never went upstream";
  EXPECT_EQ(embed_one(key, "another key").status, 200) << "other keys are not held";
  auto batch = http_call(emr.port(), "POST", "/v1/embeddings/batch",
                         R"({"requests":[{"id":1,"provider":"voyage","input":"b"}]})",
                         {{"Authorization", "Bearer " + token}});
  EXPECT_EQ(batch.status, 429) << batch.body;

  auto cleared =
      emr.admin("PATCH", "/admin/keys/" + std::to_string(id), R"({"requests_per_minute":null})");
  ASSERT_EQ(cleared.status, 200) << cleared.body;
  EXPECT_EQ(cleared.json().at("requests_per_minute").as_int64(), 0);
  EXPECT_EQ(embed_one(token, "limited 4").status, 200) << "the limit is gone at once";

  EXPECT_EQ(
      emr.admin("PATCH", "/admin/keys/" + std::to_string(id), R"({"tokens_per_day":-1})").status,
      400);
  EXPECT_EQ(emr.admin("PATCH", "/admin/keys/999", R"({"tokens_per_day":5})").status, 404);
  EXPECT_EQ(emr.admin("POST", "/admin/keys", R"({"name":"x","tokens_per_minute":"many"})").status,
            400);
}

TEST_F(key_limits_stack, a_days_tokens_set_from_the_cli_hold_until_midnight_utc) {
  auto [id, token] = limited_key("daily", R"("tokens_per_minute":0)");
  auto cli = run_cli({"keys", "update", std::to_string(id), "--tpd", "12", "--server",
                      emr.base_url(), "--admin-secret", admin_secret});
  ASSERT_EQ(cli.code, 0) << cli.err;
  EXPECT_EQ(cli.out, "updated key " + std::to_string(id) + "\n");
  auto listed =
      run_cli({"keys", "list", "--server", emr.base_url(), "--admin-secret", admin_secret});
  ASSERT_EQ(listed.code, 0) << listed.err;
  EXPECT_NE(listed.out.find("TPD"), std::string::npos) << listed.out;

  // "daily N" is 7 bytes: 3 tokens as emr estimates them before the call, 2 as the fake counts
  // them after. Each answer settles its estimate to 2: five are answered (10 tokens), and a
  // sixth, estimated at 3, would pass 12.
  int answered = 0;
  http_answer last;
  for (int i = 0; i < 10; ++i) {
    last = embed_one(token, "daily " + std::to_string(i));
    if (last.status != 200)
      break;
    ++answered;
  }
  EXPECT_EQ(answered, 5);
  ASSERT_EQ(last.status, 429) << last.body;
  auto wait = std::stoll(last.headers.at("Retry-After"));
  EXPECT_GE(wait, 1);
  EXPECT_LE(wait, 86400) << "until midnight UTC";
  auto too_long = embed_one(token, std::string(100, 'x'));
  EXPECT_EQ(too_long.status, 400) << "never fits a day of 12 tokens";
  EXPECT_EQ(run_cli({"keys", "update", std::to_string(id), "--server", emr.base_url(),
                     "--admin-secret", admin_secret})
                .code,
            1)
      << "nothing to update";
}

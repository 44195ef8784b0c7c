// key_quotas on an injected clock: a minute's requests and tokens, a UTC day's tokens read
// through the usage meter, the wait a refusal names, and estimates settled to what was counted.

#include "http/key_quotas.hpp"
#include "storage/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace emr::key_quotas_tests {

namespace fs = std::filesystem;

struct key_quotas_test : ::testing::Test {
  fs::path directory;
  std::unique_ptr<sqlite_store> db;
  std::unique_ptr<key_usage_meter> meter;
  std::int64_t now = 20000 * 86400 + 1000; // day 20000, 1,000 s after midnight UTC
  std::int64_t key = 0;

  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "emr_quotas_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    directory = pattern;
    db = std::make_unique<sqlite_store>(directory / "emr.db");
    key = db->create_key("k", "pub_k", "h").id;
    meter = std::make_unique<key_usage_meter>(*db, [this] { return now; });
  }
  void TearDown() override {
    meter.reset();
    db.reset();
    fs::remove_all(directory);
  }
  std::function<std::int64_t()> clock() {
    return [this] { return now; };
  }
};

// The refusal, if admit refused.
std::optional<api_error> refused(const std::variant<key_quotas::admission, api_error>& verdict) {
  if (auto e = std::get_if<api_error>(&verdict))
    return *e;
  return std::nullopt;
}

TEST_F(key_quotas_test, a_key_without_limits_is_never_refused) {
  key_quotas quotas{*meter, clock()};
  for (int i = 0; i < 1000; ++i)
    EXPECT_FALSE(refused(quotas.admit(key, 1, 1'000'000)));
}

TEST_F(key_quotas_test, requests_a_minute_refuse_with_the_wait_until_the_oldest_leave) {
  key_quotas quotas{*meter, clock()};
  quotas.set(key, key_limits{3, 0, 0});
  EXPECT_FALSE(refused(quotas.admit(key, 1, 10)));
  now += 20;
  EXPECT_FALSE(refused(quotas.admit(key, 1, 10)));
  EXPECT_FALSE(refused(quotas.admit(key, 1, 10)));
  auto refusal = refused(quotas.admit(key, 1, 10));
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->status, 429);
  EXPECT_EQ(refusal->code, "key_limit");
  EXPECT_EQ(refusal->retry_after_ms, 40'000) << "the first request leaves the window at +60 s";
  now += 40;
  EXPECT_FALSE(refused(quotas.admit(key, 1, 10)));
  auto batch = refused(quotas.admit(key, 4, 10));
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->status, 400) << "four at once never fit three a minute";
}

TEST_F(key_quotas_test, tokens_a_minute_count_what_the_answers_counted) {
  key_quotas quotas{*meter, clock()};
  quotas.set(key, key_limits{0, 100, 0});
  auto admitted = quotas.admit(key, 1, 80); // estimated 80
  ASSERT_FALSE(refused(admitted));
  quotas.settle(std::get<key_quotas::admission>(admitted), 30); // counted 30
  EXPECT_FALSE(refused(quotas.admit(key, 1, 70))) << "30 + 70 fit";
  auto refusal = refused(quotas.admit(key, 1, 1));
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->status, 429);
  EXPECT_EQ(refusal->retry_after_ms, 60'000);
  EXPECT_EQ(refused(quotas.admit(key, 1, 101))->status, 400);
  quotas.set(key, key_limits{});
  EXPECT_FALSE(refused(quotas.admit(key, 1, 1'000))) << "limits cleared";
}

TEST_F(key_quotas_test, a_request_answered_after_its_minute_frees_no_tokens_of_the_next) {
  key_quotas quotas{*meter, clock()};
  quotas.set(key, key_limits{0, 100, 0});
  auto slow = quotas.admit(key, 1, 80);
  ASSERT_FALSE(refused(slow));
  now += 61;
  quotas.settle(std::get<key_quotas::admission>(slow), 10);
  EXPECT_FALSE(refused(quotas.admit(key, 1, 100)));
  EXPECT_TRUE(refused(quotas.admit(key, 1, 1)))
      << "the 70 tokens over-estimated left with their minute";
}

// Limits set while a request of the key is in flight: its estimate was never counted against
// them, so settling it takes nothing back from them, and what it spent still counts.
TEST_F(key_quotas_test, limits_set_while_a_request_is_in_flight_are_not_loosened_by_its_answer) {
  key_quotas quotas{*meter, clock()};
  auto before = quotas.admit(key, 1, 1000);
  ASSERT_FALSE(refused(before));
  quotas.set(key, key_limits{0, 100, 0});
  ASSERT_FALSE(refused(quotas.admit(key, 1, 80)));
  quotas.settle(std::get<key_quotas::admission>(before), 750);
  auto refusal = refused(quotas.admit(key, 1, 30));
  ASSERT_TRUE(refusal) << "80 + 30 tokens are over 100 a minute";
  EXPECT_EQ(refusal->status, 429);
}

TEST_F(key_quotas_test, a_day_limit_set_while_a_request_is_in_flight_counts_what_it_spent) {
  key_quotas quotas{*meter, clock()};
  auto before = quotas.admit(key, 1, 1000);
  ASSERT_FALSE(refused(before));
  quotas.set(key, key_limits{0, 0, 100});
  meter->record({key, 0, 1, 1, 750, 1, 1, 0, 0});
  quotas.settle(std::get<key_quotas::admission>(before), 750);
  for (int i = 0; i < 3; ++i) {
    auto refusal = refused(quotas.admit(key, 1, 30));
    ASSERT_TRUE(refusal) << "750 tokens today are past 100 (request " << i << ")";
    EXPECT_EQ(refusal->status, 429);
    now += quotas.day_refresh_s;
  }
}

TEST_F(key_quotas_test, a_days_tokens_count_every_replicas_use_and_reset_at_utc_midnight) {
  key_quotas quotas{*meter, clock()};
  quotas.set(key, key_limits{0, 0, 1000});
  // Another replica already used 900 tokens today: it is in the store.
  db->add_key_usage({{key, 20000, 5, 5, 900, 5, 1, 0, 0}});
  EXPECT_FALSE(refused(quotas.admit(key, 1, 60)));
  auto refusal = refused(quotas.admit(key, 1, 60));
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->status, 429);
  EXPECT_EQ(refusal->retry_after_ms, (86400 - 1000) * 1000) << "until midnight UTC";
  now = 20001 * 86400;
  EXPECT_FALSE(refused(quotas.admit(key, 1, 60))) << "a new day";
}

TEST_F(key_quotas_test, limits_load_from_the_store_and_a_revoked_key_has_none_to_count) {
  auto limited = db->create_key("limited", "pub_l", "h");
  ASSERT_TRUE(db->set_key_limits(limited.id, key_limits{1, 0, 0}));
  key_quotas quotas{*meter, clock()};
  quotas.load(db->keys());
  EXPECT_FALSE(refused(quotas.admit(limited.id, 1, 1)));
  EXPECT_TRUE(refused(quotas.admit(limited.id, 1, 1)));
  EXPECT_FALSE(refused(quotas.admit(key, 1, 1)));
  EXPECT_EQ(db->key(limited.id)->limits, (key_limits{1, 0, 0}));
  auto rotated = db->rotate_key(limited.id, "pub_r", "h2");
  ASSERT_TRUE(rotated);
  EXPECT_EQ(rotated->limits, (key_limits{1, 0, 0})) << "the replacement keeps the limits";
  EXPECT_EQ(db->key(rotated->id)->limits, (key_limits{1, 0, 0}));
  EXPECT_FALSE(db->set_key_limits(limited.id, key_limits{})) << "revoked";
}

} // namespace emr::key_quotas_tests

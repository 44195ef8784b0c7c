// key_usage_meter on a real SQLite store and an injected clock: counts reach the store only when
// flushed, reads add what is still pending, and a day ends at UTC midnight.

#include "http/key_usage_meter.hpp"
#include "storage/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace emr::key_usage_meter_tests {

namespace fs = std::filesystem;

struct key_usage_meter_test : ::testing::Test {
  fs::path directory;
  std::unique_ptr<sqlite_store> db;
  std::int64_t now = 20000 * 86400 + 86399; // the last second of day 20000
  std::int64_t key = 0;

  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "emr_usage_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    directory = pattern;
    db = std::make_unique<sqlite_store>(directory / "emr.db");
    key = db->create_key("k", "pub_k", "h").id;
  }
  void TearDown() override {
    db.reset();
    fs::remove_all(directory);
  }
  key_usage_row request(std::int64_t texts, std::int64_t tokens, std::int64_t hits) const {
    key_usage_row r;
    r.key_id = key;
    r.requests = 1;
    r.texts = texts;
    r.tokens = tokens;
    r.cache_hits = hits;
    r.upstream_texts = texts - hits;
    r.upstream_calls = 0.5;
    return r;
  }
};

TEST_F(key_usage_meter_test, counts_pending_and_stored_read_as_one_and_days_end_at_utc_midnight) {
  key_usage_meter meter{*db, [this] { return now; }};
  meter.record(request(3, 9, 1));
  EXPECT_TRUE(db->key_usage(key, 0).empty()) << "nothing is written per request";
  meter.flush();
  meter.record(request(2, 6, 0));
  ++now; // day 20001 begins
  meter.record(request(1, 3, 1));
  auto rows = meter.usage(key, 0);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (key_usage_row{key, 20000, 2, 5, 15, 4, 1.0, 1, 0}));
  EXPECT_EQ(rows[1], (key_usage_row{key, 20001, 1, 1, 3, 0, 0.5, 1, 0}));
  EXPECT_EQ(meter.usage(key, 20001).size(), 1u);
  meter.flush();
  EXPECT_EQ(db->key_usage(key, 0), rows) << "flushed, nothing lost or counted twice";
  EXPECT_EQ(meter.usage(key, 0), rows);
  EXPECT_EQ(utc_day(-1), -1);
  EXPECT_EQ(day_text(20000), "2024-10-04");
}

TEST_F(key_usage_meter_test, the_busiest_keys_are_named_and_the_rest_summed) {
  key_usage_meter meter{*db, [this] { return now; }};
  for (std::int64_t id = 1; id <= 5; ++id)
    for (std::int64_t n = 0; n < id; ++n) {
      auto r = request(1, 1, 0);
      r.key_id = id * 100;
      meter.record(r);
    }
  auto top = meter.busiest(2);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].key_id, 500);
  EXPECT_EQ(top[1].key_id, 400);
  EXPECT_EQ(top[2].key_id, 0);
  EXPECT_EQ(top[2].requests, 1 + 2 + 3);
  EXPECT_EQ(meter.busiest(10).size(), 5u);
}

TEST_F(key_usage_meter_test, what_is_left_is_written_when_the_meter_stops) {
  {
    key_usage_meter meter{*db, [this] { return now; }};
    meter.record(request(4, 8, 0));
  }
  ASSERT_EQ(db->key_usage(key, 0).size(), 1u);
  EXPECT_EQ(db->key_usage(key, 0).front().texts, 4);
}

} // namespace emr::key_usage_meter_tests

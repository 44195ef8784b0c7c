// The fake provider's own model of a busy API (--concurrency): each API key is served so many
// calls at once, the rest wait their turn at the provider, and the wait blocks nothing else: not
// another key's calls, not the control routes, not a stop.

#include "tests/integration/harness.hpp"
#include "tools/load_client.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <future>
#include <thread>

using namespace emr::testing;

namespace {

// `callers` single-text calls to voyage-3.5 at once, straight at the fake with `key`.
std::vector<emr::load::result> fire_at_fake(const fake_provider& fake, const std::string& key,
                                            int callers) {
  emr::load::endpoint to{fake.url(""), "/v1/embeddings", key, {{"model", "\"voyage-3.5\""}}, {}};
  std::vector<emr::load::caller> calls;
  for (int i = 0; i < callers; ++i)
    calls.push_back({{key + " text " + std::to_string(i)}});
  return emr::load::fire_concurrent(to, calls, emr::load::expectation{"voyage-3.5"});
}

void expect_all_verified(const std::vector<emr::load::result>& results) {
  for (const auto& r : results) {
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_TRUE(r.vectors_ok) << r.error;
  }
}

// Polls /_stats until `n` calls wait and one is served (bounded); returns the last stats seen.
// The call that took the free slot counts as in flight a moment after it left the line, which
// the others may have joined by then.
boost::json::object when_waiting(const fake_provider& fake, std::int64_t n) {
  auto stats = fake.stats();
  for (int i = 0; i < 1000 && (stats.at("waiting").as_int64() != n ||
                               stats.at("peak_in_flight").as_int64() == 0);
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
    stats = fake.stats();
  }
  return stats;
}

// 500 ms a call: all six calls arrive long before the first two are answered, even under the
// sanitizers, so four of them must queue.
TEST(fake_provider_queue, a_key_is_served_concurrency_calls_at_once_and_the_rest_wait_in_line) {
  scratch_dir dir;
  fake_provider fake{dir, {"--concurrency", "2", "--latency-ms", "500"}};
  const auto results = fire_at_fake(fake, "key-a", 6);
  ASSERT_EQ(results.size(), 6u);
  expect_all_verified(results);
  const auto stats = fake.stats();
  EXPECT_EQ(stats.at("calls").as_int64(), 6);
  EXPECT_EQ(stats.at("ok_calls").as_int64(), 6);
  EXPECT_EQ(stats.at("peak_in_flight").as_int64(), 2);
  EXPECT_EQ(stats.at("peak_waiting").as_int64(), 4);
  EXPECT_EQ(stats.at("waiting").as_int64(), 0);
}

TEST(fake_provider_queue, without_a_limit_no_call_waits) {
  scratch_dir dir;
  fake_provider fake{dir, {"--latency-ms", "500"}};
  expect_all_verified(fire_at_fake(fake, "key-a", 6));
  const auto stats = fake.stats();
  EXPECT_EQ(stats.at("peak_in_flight").as_int64(), 6);
  EXPECT_EQ(stats.at("peak_waiting").as_int64(), 0);
}

TEST(fake_provider_queue, each_key_has_its_own_line) {
  scratch_dir dir;
  fake_provider fake{dir, {"--concurrency", "1", "--latency-ms", "500"}};
  auto a = std::async(std::launch::async, [&] { return fire_at_fake(fake, "key-a", 2); });
  auto b = std::async(std::launch::async, [&] { return fire_at_fake(fake, "key-b", 2); });
  expect_all_verified(a.get());
  expect_all_verified(b.get());
  const auto stats = fake.stats();
  EXPECT_EQ(stats.at("calls").as_int64(), 4);
  EXPECT_EQ(stats.at("peak_in_flight").as_int64(), 2) << "one call of each key at once";
  EXPECT_EQ(stats.at("peak_waiting").as_int64(), 2);
}

// The queue would take 6 × 5 s; the control routes answer meanwhile, and SIGTERM ends it.
TEST(fake_provider_queue, control_routes_answer_and_a_stop_ends_the_queue_while_calls_wait) {
  scratch_dir dir;
  fake_provider fake{dir, {"--concurrency", "1", "--latency-ms", "5000"}};
  auto callers = std::async(std::launch::async, [&] { return fire_at_fake(fake, "key-a", 6); });
  const auto stats = when_waiting(fake, 5);
  EXPECT_EQ(stats.at("waiting").as_int64(), 5);
  EXPECT_EQ(stats.at("peak_in_flight").as_int64(), 1);
  EXPECT_EQ(http_call(fake.port(), "POST", "/_reset", "{}").status, 200);
  EXPECT_EQ(fake.stats().at("peak_waiting").as_int64(), 5)
      << "the peak restarts from those waiting";
  fake.process().signal(SIGTERM);
  EXPECT_EQ(fake.process().wait(std::chrono::seconds{10}), 0) << fake.process().log();
  EXPECT_EQ(callers.get().size(), 6u);
}

} // namespace

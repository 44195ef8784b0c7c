// The bounds on a drain: shutdown_timeout, and a second signal. (A drain that finishes in time is
// standard_api's SIGTERM-during-a-burst test.)

#include "tests/integration/harness.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <future>
#include <thread>

using namespace emr::testing;

namespace {

struct draining_server {
  scratch_dir dir;
  fake_provider fake{dir};
  emr_server emr;
  std::string key;

  explicit draining_server(int shutdown_timeout_s)
      : emr{dir, "shutdown_timeout_s = " + std::to_string(shutdown_timeout_s) + "\n"} {
    EXPECT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
    key = emr.create_key();
  }

  // A caller whose upstream call the fake holds for 20 s: the drain cannot finish before it.
  std::future<http_answer> start_a_stuck_caller() {
    fake.faults(R"({"script":[{"delay_ms":20000}]})");
    auto caller = std::async(std::launch::async, [this] {
      return emr.embed(key, R"({"input":"stuck","provider":"voyage"})");
    });
    for (int i = 0; i < 1000 && fake.stats().at("peak_in_flight").as_int64() == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    return caller;
  }

  bool log_says(const std::string& text) {
    return emr.process().log().find(text) != std::string::npos;
  }
};

TEST(drain_bounds, a_drain_longer_than_shutdown_timeout_exits_1) {
  draining_server s{1};
  auto caller = s.start_a_stuck_caller();
  ASSERT_EQ(s.fake.stats().at("peak_in_flight").as_int64(), 1);
  s.emr.process().signal(SIGTERM);
  // Well before the fake would answer (20 s) or the caller's deadline (60 s).
  EXPECT_EQ(s.emr.process().wait(std::chrono::seconds{10}), 1);
  EXPECT_TRUE(s.log_says("the drain took longer than 1 s; exiting before it finished"))
      << s.emr.process().log();
  EXPECT_EQ(caller.get().status, 0) << "the connection closes with the process";
}

TEST(drain_bounds, a_second_signal_during_the_drain_exits_130_at_once) {
  draining_server s{30};
  auto caller = s.start_a_stuck_caller();
  ASSERT_EQ(s.fake.stats().at("peak_in_flight").as_int64(), 1);
  s.emr.process().signal(SIGTERM);
  // Two pending SIGTERMs would merge into one: the second goes once the first is taken.
  for (int i = 0; i < 1000 && !s.log_says("draining"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  ASSERT_TRUE(s.log_says("draining")) << s.emr.process().log();
  s.emr.process().signal(SIGINT);
  // Long before shutdown_timeout (30 s) would have ended it with 1.
  EXPECT_EQ(s.emr.process().wait(std::chrono::seconds{10}), 130);
  EXPECT_TRUE(s.log_says("a second signal: exiting before the drain finished"))
      << s.emr.process().log();
  EXPECT_FALSE(s.log_says("the drain took longer")) << s.emr.process().log();
  EXPECT_EQ(caller.get().status, 0);
}

} // namespace

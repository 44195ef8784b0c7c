// load_config, default_config_text and config_json: the emr.toml table, validation and defaults.

#include "cli/config.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <toml.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace json = boost::json;

namespace emr {
namespace {

struct config_file : ::testing::Test {
  std::filesystem::path dir;
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("emr_config_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string write(const std::string& text) {
    auto path = (dir / "emr.toml").string();
    std::ofstream{path} << text;
    return path;
  }
};

bool mentions(const std::vector<std::string>& problems, const std::string& needle) {
  for (const auto& p : problems)
    if (p.find(needle) != std::string::npos)
      return true;
  return false;
}

std::string joined(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& p : problems)
    out += p + "\n";
  return out;
}

TEST_F(config_file, empty_file_is_valid_with_defaults) {
  auto loaded = load_config(write(""));
  EXPECT_TRUE(loaded.problems.empty()) << joined(loaded.problems);
  emr_config defaults;
  EXPECT_EQ(json::value(config_json(loaded.config)), json::value(config_json(defaults)));
  EXPECT_EQ(loaded.config.http.port, 3200);
  EXPECT_EQ(loaded.config.storage_path, "emr.db");
}

TEST_F(config_file, every_key_set) {
  auto loaded = load_config(write(R"([server]
bind = "0.0.0.0:9000"
threads = 64
max_connections = 100
read_timeout_s = 11
write_timeout_s = 12
keep_alive_timeout_s = 13
deadline_ms = 5000
shutdown_timeout_s = 14

[limits]
max_body_bytes = 2048
max_texts_per_request = 100
max_text_bytes = 1000
max_batch_requests = 7
max_batch_texts = 70
max_response_bytes = 65536
max_queued_texts = 500

[storage]
path = "/tmp/x.db"

[batching]
window_ms = 20
linger_us = 300
initial_concurrency = 2
max_concurrency = 8

[retry]
max_retries = 3
attempt_cap_ms = 1000
budget_ms = 4000
base_ms = 100

[upstream]
connect_timeout_s = 2
timeout_s = 20

[health]
window_s = 120
failure_threshold = 3
sin_bin_s = 10
sin_bin_max_s = 100
probe_interval_s = 5
max_restarts = 3
restart_window_s = 30

[auth]
argon2_t_cost = 3
argon2_m_cost_kib = 1024
failures_per_minute_per_key = 7
failures_per_minute_per_address = 70
max_concurrent_verifications = 3
verification_wait_ms = 250

[log]
level = "debug"
format = "json"
)"));
  EXPECT_TRUE(loaded.problems.empty()) << joined(loaded.problems);
  const auto& c = loaded.config;
  using namespace std::chrono_literals;
  EXPECT_EQ(c.http.host, "0.0.0.0");
  EXPECT_EQ(c.http.port, 9000);
  EXPECT_EQ(c.http.threads, 64u);
  EXPECT_EQ(c.http.max_connections, 100u);
  EXPECT_EQ(c.http.read_timeout, 11s);
  EXPECT_EQ(c.http.write_timeout, 12s);
  EXPECT_EQ(c.http.keep_alive_timeout, 13s);
  EXPECT_EQ(c.http.deadline, 5000ms);
  EXPECT_EQ(c.shutdown_timeout, 14s);
  EXPECT_EQ(c.http.max_body_bytes, 2048u);
  EXPECT_EQ(c.http.limits.max_texts, 100u);
  EXPECT_EQ(c.http.limits.max_text_bytes, 1000u);
  EXPECT_EQ(c.http.max_batch_requests, 7u);
  EXPECT_EQ(c.http.limits.max_batch_texts, 70u);
  EXPECT_EQ(c.http.limits.max_response_bytes, 65536u);
  EXPECT_EQ(c.batching.max_queued_texts, 500u);
  EXPECT_EQ(c.storage_path, "/tmp/x.db");
  EXPECT_EQ(c.batching.flush.window, 20ms);
  EXPECT_EQ(c.batching.flush.linger, 300us);
  EXPECT_EQ(c.batching.flush.initial_concurrency, 2u);
  EXPECT_EQ(c.batching.flush.max_concurrency, 8u);
  EXPECT_EQ(c.batching.retry.max_retries, 3);
  EXPECT_EQ(c.batching.retry.attempt_cap, 1000ms);
  EXPECT_EQ(c.batching.retry.budget, 4000ms);
  EXPECT_EQ(c.batching.retry.base, 100ms);
  EXPECT_EQ(c.batching.upstream.connect_timeout, 2s);
  EXPECT_EQ(c.batching.upstream.read_timeout, 20s);
  EXPECT_EQ(c.health.window, 120s);
  EXPECT_EQ(c.health.failure_threshold, 3);
  EXPECT_EQ(c.health.sin_bin_base, 10s);
  EXPECT_EQ(c.health.sin_bin_max, 100s);
  EXPECT_EQ(c.health.probe_interval, 5s);
  EXPECT_EQ(c.restarts.max_restarts, 3);
  EXPECT_EQ(c.restarts.window, 30s);
  EXPECT_EQ(c.argon2.t_cost, 3u);
  EXPECT_EQ(c.argon2.m_cost_kib, 1024u);
  EXPECT_EQ(c.auth.failures_per_minute_per_key, 7u);
  EXPECT_EQ(c.auth.failures_per_minute_per_address, 70u);
  EXPECT_EQ(c.auth.max_concurrent_verifications, 3u);
  EXPECT_EQ(c.auth.verification_wait, 250ms);
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.format, "json");
}

TEST_F(config_file, unknown_key_wrong_type_and_out_of_range_are_reported_together_with_lines) {
  auto path = write(R"([server]
bind = "127.0.0.1:3300"
thread = 64

[batching]
window_ms = "fast"

[retry]
max_retries = 11
base_ms = 200
)");
  auto loaded = load_config(path);
  ASSERT_EQ(loaded.problems.size(), 3u) << joined(loaded.problems);
  EXPECT_TRUE(mentions(loaded.problems, path + ":3: unknown key 'server.thread'"))
      << joined(loaded.problems);
  EXPECT_TRUE(mentions(loaded.problems, path + ":6: 'batching.window_ms' must be an integer"))
      << joined(loaded.problems);
  EXPECT_TRUE(mentions(loaded.problems, path + ":9: 'retry.max_retries' must be between 0 and 10"))
      << joined(loaded.problems);
  // Valid keys still apply; the bad ones keep their defaults.
  EXPECT_EQ(loaded.config.http.port, 3300);
  EXPECT_EQ(loaded.config.batching.retry.base, std::chrono::milliseconds{200});
  EXPECT_EQ(loaded.config.batching.retry.max_retries, 2);
  EXPECT_EQ(loaded.config.batching.flush.window, std::chrono::milliseconds{50});
}

TEST_F(config_file, bad_string_values_and_sections_are_reported) {
  auto path = write(R"(storage = 3
[log]
level = "loud"
[server]
bind = "nowhere"
)");
  auto loaded = load_config(path);
  EXPECT_EQ(loaded.problems.size(), 3u) << joined(loaded.problems);
  EXPECT_TRUE(mentions(loaded.problems, path + ":1: 'storage' must be a table"))
      << joined(loaded.problems);
  EXPECT_TRUE(mentions(loaded.problems, path + ":3: 'log.level'")) << joined(loaded.problems);
  EXPECT_TRUE(mentions(loaded.problems, path + ":5: 'server.bind'")) << joined(loaded.problems);
}

TEST_F(config_file, toml_syntax_error_is_a_problem_not_a_throw) {
  auto loaded = load_config(write("[server\nbind = 1\n"));
  EXPECT_EQ(loaded.problems.size(), 1u);
}

// toml11 recurses once per '[' and once per part of a dotted key: 20 KB of '[' crashed
// `emr config validate`, and so did 400 KB of "a.a.a...".
TEST(parse_config, deep_nesting_is_a_problem_not_a_crash) {
  auto arrays = parse_config("a = " + std::string(10000, '[') + std::string(10000, ']'), "x.toml");
  ASSERT_EQ(arrays.problems.size(), 1u) << joined(arrays.problems);
  EXPECT_TRUE(mentions(arrays.problems, "x.toml: more than 100 '[' and '{'"))
      << joined(arrays.problems);
  std::string dotted = "a";
  for (int i = 0; i < 1001; ++i)
    dotted += ".a";
  auto keys = parse_config(dotted + " = 1\n", "x.toml");
  ASSERT_EQ(keys.problems.size(), 1u) << joined(keys.problems);
  EXPECT_TRUE(mentions(keys.problems, "x.toml: more than 1000 '.'")) << joined(keys.problems);
}

// Found by fuzzing: toml11 read past the text to report invalid UTF-8 in a literal string.
TEST(parse_config, invalid_utf8_is_a_problem_with_its_line) {
  // A literal string (where toml11 read past the text), a multi-line one, and a comment.
  for (auto text : {"[log]\nlevel = '\x8d'\n", "[log]\nlevel = '''\x8d'''\n", "[log]\n# \xff\n"}) {
    auto loaded = parse_config(text, "x.toml");
    ASSERT_EQ(loaded.problems.size(), 1u) << joined(loaded.problems);
    EXPECT_TRUE(mentions(loaded.problems, "x.toml:2: not valid UTF-8")) << joined(loaded.problems);
  }
}

TEST_F(config_file, default_text_uncommented_is_valid_and_matches_defaults) {
  auto text = default_config_text();
  std::istringstream in{text};
  std::ostringstream out;
  std::regex assignment{R"(^# ([a-z0-9_]+) = .*$)"};
  std::string line;
  int uncommented = 0;
  while (std::getline(in, line)) {
    if (std::regex_match(line, assignment)) {
      line = line.substr(2);
      ++uncommented;
    }
    out << line << "\n";
  }
  EXPECT_EQ(uncommented, 49);
  auto path = write(out.str());
  EXPECT_NO_THROW(toml::parse(path));
  auto loaded = load_config(path);
  EXPECT_TRUE(loaded.problems.empty()) << joined(loaded.problems);
  EXPECT_EQ(json::value(config_json(loaded.config)), json::value(config_json(emr_config{})));
}

TEST(config_json, contains_every_section_and_key) {
  auto o = config_json(emr_config{});
  std::map<std::string, std::vector<std::string>> expected{
      {"server",
       {"bind", "threads", "prewritten_heap_kib", "max_connections", "read_timeout_s",
        "write_timeout_s", "request_read_timeout_s", "keep_alive_timeout_s", "deadline_ms",
        "shutdown_timeout_s"}},
      {"limits",
       {"max_body_bytes", "max_texts_per_request", "max_text_bytes", "max_batch_requests",
        "max_batch_texts", "max_response_bytes", "max_queued_texts"}},
      {"storage", {"path", "url"}},
      {"batching",
       {"window_ms", "linger_us", "coalesce_us", "reuse_ms", "initial_concurrency",
        "max_concurrency"}},
      {"retry", {"max_retries", "attempt_cap_ms", "budget_ms", "base_ms"}},
      {"upstream", {"connect_timeout_s", "timeout_s"}},
      {"health",
       {"window_s", "failure_threshold", "sin_bin_s", "sin_bin_max_s", "probe_interval_s",
        "max_restarts", "restart_window_s"}},
      {"auth",
       {"argon2_t_cost", "argon2_m_cost_kib", "failures_per_minute_per_key",
        "failures_per_minute_per_address", "max_concurrent_verifications", "verification_wait_ms"}},
      {"cache", {"max_bytes", "ttl_s", "stored_entries"}},
      {"log", {"level", "format"}},
  };
  EXPECT_EQ(o.size(), expected.size());
  for (const auto& [section, keys] : expected) {
    ASSERT_TRUE(o.contains(section)) << section;
    const auto& s = o.at(section).as_object();
    EXPECT_EQ(s.size(), keys.size()) << section;
    for (const auto& k : keys)
      EXPECT_TRUE(s.contains(k)) << section << "." << k;
  }
  EXPECT_EQ(o.at("server").at("bind").as_string(), "127.0.0.1:3200");
  EXPECT_EQ(o.at("batching").at("window_ms").to_number<int>(), 50);
  EXPECT_EQ(o.at("batching").at("linger_us").to_number<int>(), 500);
  EXPECT_EQ(o.at("retry").at("max_retries").to_number<int>(), 2);
  EXPECT_EQ(o.at("health").at("sin_bin_s").to_number<int>(), 30);
  EXPECT_EQ(o.at("log").at("level").as_string(), "info");
}

} // namespace
} // namespace emr

namespace emr {
namespace {

// The sample config `cmake --install` ships is the one `emr config init` writes.
TEST(shipped_config, is_the_default_file) {
  std::ifstream in{std::string{EMR_SOURCE_DIR} + "/docs/emr.example.toml"};
  std::string shipped{std::istreambuf_iterator<char>{in}, {}};
  EXPECT_EQ(shipped, default_config_text())
      << "regenerate it: build/emr config init --config docs/emr.example.toml --force";
}

} // namespace
} // namespace emr

// The spine end to end: real `emr serve` processes batching real callers into a fake Voyage.

#include "tests/integration/harness.hpp"
#include "tools/load_client.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

namespace json = boost::json;
using namespace emr::testing;

namespace {

struct spine : voyage_stack {
  emr::load::endpoint through_emr() const {
    return {emr.base_url(), "/v1/embeddings", key, {{"provider", "\"voyage\""}}, {}};
  }
};

std::vector<emr::load::caller> single_text_callers(std::size_t n, const std::string& prefix,
                                                   const std::string& input_type = {}) {
  std::vector<emr::load::caller> callers(n);
  for (std::size_t i = 0; i < n; ++i) {
    callers[i].texts = {prefix + " " + std::to_string(i)};
    callers[i].input_type = input_type;
  }
  return callers;
}

} // namespace

TEST_F(spine, thousand_concurrent_callers_share_at_most_ten_upstream_calls) {
  // A serving router is warm: one call first, so the burst meets running threads, not a cold start.
  ASSERT_EQ(emr.embed(key, R"({"input":"warm-up","provider":"voyage"})").status, 200);
  fake.reset();
  auto results = emr::load::fire_concurrent(through_emr(), single_text_callers(1000, "burst"),
                                            emr::load::expectation{"voyage-3.5"});
  std::size_t ok = 0;
  for (const auto& r : results) {
    ok += r.status == 200 && r.vectors_ok;
    if (!(r.status == 200 && r.vectors_ok))
      ADD_FAILURE() << r.status << " " << r.error;
  }
  EXPECT_EQ(ok, 1000u);
  auto stats = fake.stats();
  EXPECT_EQ(stats.at("texts").as_int64(), 1000);
  std::string calls;
  for (const auto& c : stats.at("calls_log").as_array())
    calls += std::to_string(c.at("texts").as_int64()) + "@" +
             std::to_string(static_cast<int>(c.at("t_ms").to_number<double>())) + " ";
  if (!sanitized_build) {
    EXPECT_LE(stats.at("calls").as_int64(), 10) << "texts@ms per call: " << calls;
  }
  EXPECT_GE(stats.at("calls").as_int64(), 8);
  EXPECT_LE(stats.at("largest_batch").as_int64(), 128);
}

TEST_F(spine, callers_with_different_input_types_never_share_a_call) {
  auto callers = single_text_callers(60, "query text", "query");
  auto documents = single_text_callers(60, "document text", "document");
  auto plain = single_text_callers(60, "plain text");
  callers.insert(callers.end(), documents.begin(), documents.end());
  callers.insert(callers.end(), plain.begin(), plain.end());
  auto results =
      emr::load::fire_concurrent(through_emr(), callers, emr::load::expectation{"voyage-3.5"});
  for (const auto& r : results)
    EXPECT_TRUE(r.status == 200 && r.vectors_ok) << r.status << " " << r.error;
  // Vectors are seeded by input type, so a verified vector proves its text went up with its
  // own type; the log shows how the calls were grouped.
  std::map<std::string, std::int64_t> texts_by_type;
  auto stats = fake.stats();
  for (const auto& call : stats.at("calls_log").as_array()) {
    const auto& c = call.as_object();
    texts_by_type[std::string{c.at("input_type").as_string()}] += c.at("texts").as_int64();
  }
  EXPECT_EQ(texts_by_type["query"], 60);
  EXPECT_EQ(texts_by_type["document"], 60);
  EXPECT_EQ(texts_by_type[""], 60);
  EXPECT_EQ(texts_by_type.size(), 3u);
}

TEST_F(spine, a_caller_larger_than_one_call_is_split_and_reassembled_in_order) {
  emr::load::caller big;
  for (int i = 0; i < 300; ++i)
    big.texts.push_back("long input " + std::to_string(i));
  auto results =
      emr::load::fire_concurrent(through_emr(), {big}, emr::load::expectation{"voyage-3.5"});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, 200);
  EXPECT_TRUE(results[0].vectors_ok) << results[0].error;
  std::vector<std::int64_t> sizes;
  auto stats = fake.stats();
  for (const auto& call : stats.at("calls_log").as_array())
    sizes.push_back(call.at("texts").as_int64());
  // The three calls run concurrently, so they may reach the fake in any order.
  std::sort(sizes.begin(), sizes.end());
  EXPECT_EQ(sizes, (std::vector<std::int64_t>{44, 128, 128}));
}

TEST_F(spine, provider_and_key_survive_a_restart) {
  ASSERT_EQ(emr.stop(), 0);
  emr.start();
  auto a = emr.embed(key, R"({"input":"after restart","provider":"voyage"})");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_TRUE(
      is_fakes_vector(a.json().at("data").at(0).at("embedding"), "voyage-3.5", "after restart"));
}

TEST_F(spine, health_answers_while_serving) {
  EXPECT_EQ(http_call(emr.port(), "GET", "/health").status, 200);
}

TEST_F(spine, an_unreachable_provider_is_a_502_naming_it) {
  ASSERT_EQ(emr.add_provider("gone", "voyage", "http://127.0.0.1:1/v1/embeddings", "voyage-3.5"),
            201);
  auto a = emr.embed(key, R"({"input":"hello","provider":"gone"})");
  EXPECT_EQ(a.status, 502) << a.body;
  EXPECT_NE(a.body.find("gone"), std::string::npos) << a.body;
  EXPECT_EQ(a.json().at("error").at("type").as_string(), "provider_error");
}

TEST(serve, refuses_to_start_without_an_admin_secret) {
  scratch_dir dir;
  auto config = dir.path / "empty.toml";
  std::ofstream{config} << "";
  auto r = run_cli({"serve", "--config", config.string()}, {{"EMR_ADMIN_SECRET", ""}});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("EMR_ADMIN_SECRET"), std::string::npos) << r.err;
}

TEST(serve, a_store_it_cannot_open_is_one_clear_line_and_exit_code_1) {
  scratch_dir dir;
  auto config = dir.path / "emr.toml";
  // The store's path is a directory: SQLite cannot open it.
  std::ofstream{config} << "[storage]\npath = \"" << dir.path.string() << "\"\n";
  auto r = run_cli({"serve", "--config", config.string()},
                   {{"EMR_ADMIN_SECRET", "a-secret-of-enough-length"}});
  EXPECT_EQ(r.code, 1) << "not an abort: " << r.err;
  EXPECT_EQ(r.err.rfind("emr: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.err;
}

TEST(config_init, writes_a_default_file_and_refuses_to_overwrite_it) {
  scratch_dir dir;
  auto path = (dir.path / "emr.toml").string();
  EXPECT_EQ(run_cli({"config", "init", "--config", path}).code, 0);
  ASSERT_TRUE(std::filesystem::exists(path));
  auto again = run_cli({"config", "init", "--config", path});
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
  EXPECT_EQ(run_cli({"config", "init", "--config", path, "--force"}).code, 0);
  auto valid = run_cli({"config", "validate", "--config", path});
  EXPECT_EQ(valid.code, 0) << valid.out << valid.err;
}

// What emr takes from providers: answers whose vectors have the wrong size fail their call (502
// naming the provider) and never reach a caller; a stored provider that cannot be used is
// reported and skipped at start while the others serve.

#include "tests/integration/harness.hpp"
#include "tools/load_client.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

namespace json = boost::json;
using namespace emr::testing;

namespace {

// A caller right after the bad answer gets vectors checked against the fake's own.
void expect_verified_vectors(const emr_server& emr, const std::string& key, const std::string& text,
                             const std::string& provider = "voyage") {
  emr::load::endpoint to{
      emr.base_url(), "/v1/embeddings", key, {{"provider", '"' + provider + '"'}}, {}};
  auto results = emr::load::fire_concurrent(to, {emr::load::caller{{text}}},
                                            emr::load::expectation{"voyage-3.5"});
  EXPECT_EQ(results[0].status, 200) << results[0].error;
  EXPECT_TRUE(results[0].vectors_ok) << results[0].error;
}

void expect_refused_vectors(const http_answer& a, const std::string& why) {
  EXPECT_EQ(a.status, 502) << a.body;
  auto body = a.json();
  ASSERT_TRUE(body.is_object() && body.as_object().contains("error")) << a.body;
  EXPECT_FALSE(body.as_object().contains("data")) << a.body;
  const auto& error = body.at("error");
  EXPECT_EQ(error.at("type").as_string(), "provider_error");
  std::string message{error.at("message").as_string()};
  EXPECT_NE(message.find("provider 'voyage'"), std::string::npos) << message;
  EXPECT_NE(message.find(why), std::string::npos) << message;
}

using provider_answers = voyage_stack;

TEST_F(provider_answers, vectors_of_the_models_wrong_size_fail_the_call_with_502) {
  fake.faults(R"({"script":[{"malformed":"wrong_dims"}]})");
  expect_refused_vectors(emr.embed(key, R"({"input":"half a vector","provider":"voyage"})"),
                         "512 dimensions where 1024 were expected");
  EXPECT_EQ(fake.stats().at("calls").as_int64(), 1) << "an unusable answer is not retried";
  expect_verified_vectors(emr, key, "a whole vector");
}

TEST_F(provider_answers, a_provider_that_ignores_the_requested_dimensions_fails_the_call) {
  fake.faults(R"({"script":[{"malformed":"wrong_dims"}]})");
  expect_refused_vectors(
      emr.embed(key, R"({"input":"asked for 256","provider":"voyage","dimensions":256})"),
      "128 dimensions where 256 were expected");
  auto good = emr.embed(key, R"({"input":"asked for 256","provider":"voyage","dimensions":256})");
  ASSERT_EQ(good.status, 200) << good.body;
  EXPECT_EQ(good.json().at("data").at(0).at("embedding").as_array().size(), 256u);
}

// Rows written behind the admin API's back, as an older emr or a hand edit could leave them.
void insert_provider(const std::filesystem::path& db_path, const std::string& name,
                     const std::string& type, const std::string& endpoint) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "INSERT INTO providers (name, type, endpoint, model, api_key_env, "
                               "max_batch, enabled, created_at) VALUES (?1, ?2, ?3, 'voyage-3.5', "
                               "'EMR_TEST_PROVIDER_KEY', 0, 1, 1700000000)",
                               -1, &insert, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_bind_text(insert, 1, name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(insert, 2, type.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(insert, 3, endpoint.c_str(), -1, SQLITE_TRANSIENT);
  EXPECT_EQ(sqlite3_step(insert), SQLITE_DONE) << sqlite3_errmsg(db);
  sqlite3_finalize(insert);
  sqlite3_close(db);
}

TEST(stored_providers, one_that_cannot_be_used_is_reported_and_skipped_while_the_others_serve) {
  scratch_dir dir;
  fake_provider fake{dir};
  emr_server emr{dir};
  ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
  auto key = emr.create_key();
  ASSERT_EQ(emr.stop(), 0);
  // The fake would answer this one: only the check keeps its password out of use and sight.
  auto leaky = fake.url("/v1/embeddings").insert(7, "user:hunter2@");
  insert_provider(emr.db_path, "leaky", "voyage", leaky);
  insert_provider(emr.db_path, "mistral", "mistral", fake.url("/v1/embeddings"));
  insert_provider(emr.db_path, "far", "voyage", "http://127.0.0.1:99999/v1/embeddings");
  emr.start();

  expect_verified_vectors(emr, key, "the good one still serves");
  for (std::string name : {"leaky", "mistral", "far"}) {
    auto a = emr.embed(key, R"({"input":"x","provider":")" + name + R"("})");
    EXPECT_EQ(a.status, 400) << name << ": " << a.body;
    EXPECT_EQ(a.json().at("error").at("param").as_string(), "provider") << a.body;
  }

  auto listed = emr.admin("GET", "/admin/providers");
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body.find("hunter2"), std::string::npos) << listed.body;
  std::map<std::string, json::value> problems;
  auto providers = listed.json();
  for (const auto& p : providers.at("providers").as_array())
    problems[std::string{p.at("name").as_string()}] = p.at("problem");
  ASSERT_EQ(problems.size(), 4u);
  EXPECT_TRUE(problems["voyage"].is_null());
  auto problem = [&](const std::string& name) {
    return problems[name].is_string() ? std::string{problems[name].as_string()} : "(none)";
  };
  EXPECT_NE(problem("leaky").find("'endpoint' must not contain a user name or password"),
            std::string::npos)
      << problem("leaky");
  EXPECT_NE(problem("mistral").find("'type' must be one of"), std::string::npos)
      << problem("mistral");
  EXPECT_NE(problem("far").find("port from 1 to 65535"), std::string::npos) << problem("far");

  auto list = run_cli({"providers", "list", "--server", emr.base_url()},
                      {{"EMR_ADMIN_SECRET", admin_secret}});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.out.find("unusable: 'endpoint' must not contain a user name"), std::string::npos)
      << list.out;
  EXPECT_EQ(list.out.find("hunter2"), std::string::npos) << list.out;

  ASSERT_EQ(emr.stop(), 0);
  auto log = emr.process().log();
  EXPECT_NE(log.find("provider \"leaky\" is not started"), std::string::npos) << log;
  EXPECT_NE(log.find("provider \"mistral\" is not started"), std::string::npos) << log;
  EXPECT_EQ(log.find("hunter2"), std::string::npos) << "the password reached the log";
}

TEST(stored_providers, the_cli_refuses_an_endpoint_with_a_password_before_sending_it) {
  auto add = run_cli({"providers", "add", "--name", "leaky", "--type", "voyage", "--api-key-env",
                      "EMR_TEST_PROVIDER_KEY", "--model", "voyage-3.5", "--endpoint",
                      "https://user:hunter2@api.voyageai.com/v1/embeddings", "--server",
                      "http://127.0.0.1:9"},
                     {{"EMR_ADMIN_SECRET", admin_secret}});
  EXPECT_NE(add.code, 0);
  EXPECT_NE(add.err.find("--endpoint must not contain a user name or password"), std::string::npos)
      << add.err;
  EXPECT_EQ(add.err.find("hunter2"), std::string::npos) << add.err;
}

} // namespace

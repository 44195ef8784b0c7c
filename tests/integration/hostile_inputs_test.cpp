// Callers who send what no honest client would: ids that try to add headers to emr's upstream
// request, small requests that ask for enormous answers. And callers of the reference router,
// whose Cohere-style input types, numeric batch ids and rate-limited sub-results must keep
// working. Asserts what the fake provider received and emr's peak memory, never wall time.

#include "http/caller_text.hpp"
#include "tests/integration/harness.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

namespace json = boost::json;
using namespace emr::testing;

namespace {

http_answer batch(const emr_server& emr, const std::string& key, const json::value& requests,
                  const std::string& request_id = {}) {
  std::map<std::string, std::string> headers{{"Authorization", "Bearer " + key}};
  if (!request_id.empty())
    headers.emplace("X-Request-Id", request_id);
  return http_call(emr.port(), "POST", "/v1/embeddings/batch",
                   json::serialize(json::object{{"requests", requests}}), headers);
}

// The first vector of a standard response, against the fake's for what the provider received.
void expect_vector(const json::value& response, const std::string& model,
                   const std::string& input_type, const std::string& text) {
  EXPECT_TRUE(is_fakes_vector(response.at("data").at(0).at("embedding"), model, text, input_type));
}

// Peak resident memory of a process, in KiB (VmHWM: the high-water mark since it started).
long peak_rss_kib(pid_t pid) {
  std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

json::array calls_log(const fake_provider& fake) {
  return fake.stats().at("calls_log").as_array();
}

struct hostile_inputs : voyage_stack {};

} // namespace

TEST_F(hostile_inputs, a_batch_id_with_cr_lf_reaches_the_provider_as_one_token_and_adds_nothing) {
  const std::string smuggler =
      "a\r\nX-Injected: yes\r\n\r\nPOST /v1/embeddings HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  fake.reset();
  auto a = batch(
      emr, key,
      json::array{json::object{{"id", smuggler}, {"input", "lone text"}, {"provider", "voyage"}}},
      "hostile-1");
  ASSERT_EQ(a.status, 200) << a.body;
  auto result = a.json().at("results").at(0);
  EXPECT_EQ(result.at("id").as_string(), smuggler) << "the caller gets its id back as sent";
  ASSERT_EQ(result.at("status").as_int64(), 200) << a.body;
  expect_vector(result.at("response"), "voyage-3.5", "", "lone text");

  // Exactly one POST arrived, under the id emr made of the caller's: a token, no added header.
  auto log = calls_log(fake);
  ASSERT_EQ(fake.stats().at("calls").as_int64(), 1) << json::serialize(log);
  const auto& call = log.at(0).as_object();
  EXPECT_EQ(call.at("request_id").as_string(), "hostile-1-" + emr::to_token(smuggler));
  for (const auto& name : call.at("header_names").as_array())
    EXPECT_NE(name.as_string(), "X-Injected");

  // The next caller is served as usual.
  auto after = emr.embed(key, R"({"input":"after the smuggler","provider":"voyage"})");
  ASSERT_EQ(after.status, 200) << after.body;
  expect_vector(after.json(), "voyage-3.5", "", "after the smuggler");
  EXPECT_EQ(fake.stats().at("calls").as_int64(), 2);
}

TEST_F(hostile_inputs, a_token_batch_id_travels_upstream_as_it_is) {
  fake.reset();
  auto a = batch(
      emr, key,
      json::array{json::object{{"id", "order-7"}, {"input", "plain id"}, {"provider", "voyage"}}},
      "trace-9");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(calls_log(fake).at(0).at("request_id").as_string(), "trace-9-order-7");
}

TEST_F(hostile_inputs, amplification_is_refused_before_upstream_work_and_others_are_served) {
  // 32 sub-requests of 2,048 copies of one short text: one upstream text, 65,536 output rows.
  json::array copies;
  for (int i = 0; i < 2048; ++i)
    copies.emplace_back("amp");
  json::array requests;
  for (int i = 0; i < 32; ++i)
    requests.push_back(
        json::object{{"id", "r" + std::to_string(i)}, {"input", copies}, {"provider", "voyage"}});
  fake.reset();
  auto before = peak_rss_kib(emr.process().pid());
  ASSERT_GT(before, 0);

  http_answer attack;
  std::thread attacker{[&] { attack = batch(emr, key, requests); }};
  auto other = emr.embed(key, R"({"input":["bystander one","bystander two"],"provider":"voyage"})");
  attacker.join();

  ASSERT_EQ(attack.status, 413) << attack.body.substr(0, 300);
  auto error = attack.json().at("error");
  EXPECT_EQ(error.at("type").as_string(), "payload_too_large");
  EXPECT_EQ(error.at("code").as_string(), "too_many_texts");
  EXPECT_NE(std::string{error.at("message").as_string()}.find("limits.max_batch_texts"),
            std::string::npos);
  ASSERT_EQ(other.status, 200) << other.body;
  expect_vector(other.json(), "voyage-3.5", "", "bystander one");
  EXPECT_EQ(fake.stats().at("texts").as_int64(), 2) << "only the bystander's texts went upstream";
  // The answer would have been ~830 MB; refused, it costs emr no more than reading the body.
  EXPECT_LT(peak_rss_kib(emr.process().pid()) - before, 64 * 1024);
}

TEST_F(hostile_inputs, numeric_batch_ids_are_echoed_as_sent) {
  auto a =
      batch(emr, key,
            json::array{json::object{{"id", 7}, {"input", "seven"}, {"provider", "voyage"}},
                        json::object{{"id", "7b"}, {"input", "seven b"}, {"provider", "voyage"}},
                        json::object{{"id", -1}, {"input", "minus one"}, {"provider", "voyage"}}});
  ASSERT_EQ(a.status, 200) << a.body;
  auto body = a.json();
  const auto& results = body.at("results").as_array();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].at("id"), json::value(7));
  EXPECT_EQ(results[1].at("id"), json::value("7b"));
  EXPECT_EQ(results[2].at("id"), json::value(-1));
  for (const auto& r : results)
    EXPECT_EQ(r.at("status").as_int64(), 200) << json::serialize(r);
  expect_vector(results[0].at("response"), "voyage-3.5", "", "seven");
  expect_vector(results[2].at("response"), "voyage-3.5", "", "minus one");

  // 7 and "7" are one id.
  auto twice =
      batch(emr, key,
            json::array{json::object{{"id", 7}, {"input", "a"}, {"provider", "voyage"}},
                        json::object{{"id", "7"}, {"input", "b"}, {"provider", "voyage"}}});
  EXPECT_EQ(twice.status, 400) << twice.body;
}

// Cohere's input types reach each provider as that provider understands them, and the fake's
// vectors (which depend on the input type it received) show what it received.
TEST_F(hostile_inputs, cohere_style_input_types_are_mapped_per_provider) {
  ASSERT_EQ(
      emr.add_provider("cohere", "cohere", fake.url("/cohere/v2/embed"), "embed-english-v3.0"),
      201);
  ASSERT_EQ(emr.add_provider("openai", "openai", fake.url("/openai/v1/embeddings"),
                             "text-embedding-3-small"),
            201);
  struct expectation {
    std::string provider, model, input_type, received;
  };
  const std::vector<expectation> cases{
      {"voyage", "voyage-3.5", "search_query", "query"},
      {"voyage", "voyage-3.5", "search_document", "document"},
      {"voyage", "voyage-3.5", "classification", ""},
      {"voyage", "voyage-3.5", "clustering", ""},
      {"cohere", "embed-english-v3.0", "search_query", "search_query"},
      {"cohere", "embed-english-v3.0", "search_document", "search_document"},
      {"cohere", "embed-english-v3.0", "classification", "classification"},
      {"cohere", "embed-english-v3.0", "clustering", "clustering"},
      {"openai", "text-embedding-3-small", "search_query", ""},
      {"openai", "text-embedding-3-small", "classification", ""},
  };
  for (const auto& c : cases) {
    auto text = "role " + c.input_type;
    auto a = emr.embed(key, json::serialize(json::object{{"input", text},
                                                         {"provider", c.provider},
                                                         {"input_type", c.input_type}}));
    ASSERT_EQ(a.status, 200) << c.provider << " " << c.input_type << ": " << a.body;
    expect_vector(a.json(), c.model, c.received, text);
  }

  // One text under two Cohere roles in one batch: the roles never share an upstream call.
  auto a = batch(emr, key,
                 json::array{json::object{{"id", "c"},
                                          {"input", "same text"},
                                          {"provider", "cohere"},
                                          {"input_type", "classification"}},
                             json::object{{"id", "k"},
                                          {"input", "same text"},
                                          {"provider", "cohere"},
                                          {"input_type", "clustering"}}});
  ASSERT_EQ(a.status, 200) << a.body;
  auto body = a.json();
  const auto& results = body.at("results").as_array();
  expect_vector(results[0].at("response"), "embed-english-v3.0", "classification", "same text");
  expect_vector(results[1].at("response"), "embed-english-v3.0", "clustering", "same text");
}

namespace {

// Room for three 1,024-float vectors of voyage-3.5 (16,450 bytes each by vector_bytes), not four.
struct response_budget_stack : voyage_stack {
  response_budget_stack() : voyage_stack("[limits]\nmax_response_bytes = 65536\n") {}
};

std::string error_code(const http_answer& a) {
  return std::string{a.json().at("error").at("code").as_string()};
}

} // namespace

TEST_F(response_budget_stack, known_dimensions_are_refused_before_any_upstream_call) {
  json::array texts;
  for (int i = 0; i < 10; ++i)
    texts.emplace_back("budget " + std::to_string(i));
  fake.reset();
  auto a = emr.embed(key, json::serialize(json::object{
                              {"input", texts}, {"provider", "voyage"}, {"dimensions", 1024}}));
  ASSERT_EQ(a.status, 413) << a.body;
  EXPECT_EQ(error_code(a), "response_too_large");
  EXPECT_NE(a.body.find("limits.max_response_bytes = 65536"), std::string::npos) << a.body;
  EXPECT_EQ(fake.stats().at("calls").as_int64(), 0);

  // The model's own dimensions are learnt from its answer, and checked before rendering.
  a = emr.embed(key, json::serialize(json::object{{"input", texts}, {"provider", "voyage"}}));
  ASSERT_EQ(a.status, 413) << a.body;
  EXPECT_EQ(error_code(a), "response_too_large");

  // The same vectors fit as base64, in a third of the bytes.
  a = emr.embed(key, json::serialize(json::object{
                         {"input", texts}, {"provider", "voyage"}, {"encoding_format", "base64"}}));
  ASSERT_EQ(a.status, 200) << a.body;
  expect_vector(a.json(), "voyage-3.5", "", "budget 0");
}

TEST_F(response_budget_stack, a_batch_spends_one_budget_and_refuses_only_what_does_not_fit) {
  auto sub = [](const char* id, const char* encoding) {
    return json::object{{"id", id},
                        {"input", json::array{std::string{id} + " one", std::string{id} + " two"}},
                        {"provider", "voyage"},
                        {"dimensions", 1024},
                        {"encoding_format", encoding}};
  };
  // 2 × 16,450 bytes each as float: the first fits, the second does not; base64 still does.
  auto a =
      batch(emr, key, json::array{sub("f1", "float"), sub("f2", "float"), sub("b3", "base64")});
  ASSERT_EQ(a.status, 200) << a.body;
  auto body = a.json();
  const auto& results = body.at("results").as_array();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].at("status").as_int64(), 200);
  EXPECT_EQ(results[1].at("status").as_int64(), 413);
  EXPECT_EQ(results[1].at("error").at("code").as_string(), "response_too_large");
  EXPECT_EQ(results[2].at("status").as_int64(), 200);
  expect_vector(results[0].at("response"), "voyage-3.5", "", "f1 one");
  expect_vector(results[2].at("response"), "voyage-3.5", "", "b3 one");
}

namespace {

struct rate_limited_batch : voyage_stack {
  // Callers wait 5 s at most: less than the 7 s the provider asks for, so they hear the 429.
  rate_limited_batch() : voyage_stack("deadline_ms = 5000\n[retry]\nmax_retries = 0\n") {}
};

} // namespace

TEST_F(rate_limited_batch, a_rate_limited_sub_result_carries_retry_after) {
  fake.faults(R"({"script":[{"status":429,"retry_after":"7"}]})");
  auto a = batch(
      emr, key, json::array{json::object{{"id", 1}, {"input", "limited"}, {"provider", "voyage"}}});
  ASSERT_EQ(a.status, 200) << a.body;
  auto body = a.json();
  const auto& result = body.at("results").at(0).as_object();
  EXPECT_EQ(result.at("status").as_int64(), 429) << a.body;
  EXPECT_EQ(result.at("retry_after").as_int64(), 7) << a.body;
  EXPECT_EQ(result.at("error").at("type").as_string(), "rate_limited");
}

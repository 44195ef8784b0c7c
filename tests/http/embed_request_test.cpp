// The public embeddings API's JSON: parse_embed_request, parse_json_body, render_outcome,
// render_error.

#include "http/embed_request.hpp"
#include "http/response_budget.hpp"
#include "providers/float_codec.hpp"
#include "tools/fake_vectors.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace json = boost::json;

namespace emr {
namespace {

embed_request parse_ok(std::string_view body, request_limits limits = {}) {
  auto r = parse_embed_request(json::parse(body), limits);
  if (auto e = std::get_if<api_error>(&r)) {
    ADD_FAILURE() << body << " -> " << e->message;
    return {};
  }
  return std::get<embed_request>(std::move(r));
}

api_error parse_bad(std::string_view body, request_limits limits = {}) {
  auto r = parse_embed_request(json::parse(body), limits);
  if (!std::holds_alternative<api_error>(r)) {
    ADD_FAILURE() << body << " was accepted";
    return {};
  }
  return std::get<api_error>(r);
}

void expect_bad(std::string_view body, std::string_view param, request_limits limits = {}) {
  auto e = parse_bad(body, limits);
  EXPECT_EQ(e.status, 400) << body;
  EXPECT_EQ(e.type, "invalid_request") << body;
  EXPECT_EQ(e.param, param) << body << " -> " << e.message;
  EXPECT_FALSE(e.message.empty()) << body;
}

// ---- parse_embed_request: valid shapes ------------------------------------------------------

TEST(parse_embed_request, string_input_with_provider) {
  auto r = parse_ok(R"({"input":"hello","provider":"voy"})");
  EXPECT_EQ(r.texts, (std::vector<std::string>{"hello"}));
  EXPECT_EQ(r.provider, "voy");
  EXPECT_TRUE(r.providers.empty());
  EXPECT_FALSE(r.model);
  EXPECT_FALSE(r.policy);
  EXPECT_EQ(r.input_type, "");
  EXPECT_EQ(r.dimensions, 0);
  EXPECT_EQ(r.encoding, vector_encoding::float_array);
}

TEST(parse_embed_request, array_input_keeps_order) {
  auto r = parse_ok(R"({"input":["b","a","b"],"model":"voyage-3.5"})");
  EXPECT_EQ(r.texts, (std::vector<std::string>{"b", "a", "b"}));
  EXPECT_EQ(r.model, "voyage-3.5");
  EXPECT_FALSE(r.provider);
}

TEST(parse_embed_request, providers_and_policy) {
  auto r = parse_ok(R"({"input":["x"],"providers":["a","b"],"policy":"all"})");
  EXPECT_EQ(r.providers, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.policy, routing_policy::all);
  r = parse_ok(R"({"input":["x"],"providers":["a"],"policy":"any"})");
  EXPECT_EQ(r.policy, routing_policy::any);
}

TEST(parse_embed_request, every_optional_field) {
  auto r = parse_ok(
      R"({"input":["x"],"provider":"p","model":"m","input_type":"query","encoding_format":"base64","dimensions":256,"user":"u-1"})");
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.input_type, "query");
  EXPECT_EQ(r.encoding, vector_encoding::base64);
  EXPECT_EQ(r.dimensions, 256);
  r = parse_ok(
      R"({"input":["x"],"provider":"p","input_type":"document","encoding_format":"float"})");
  EXPECT_EQ(r.input_type, "document");
  EXPECT_EQ(r.encoding, vector_encoding::float_array);
}

TEST(parse_embed_request, nulls_mean_absent) {
  auto r = parse_ok(
      R"({"input":["x"],"provider":"p","model":null,"input_type":null,"encoding_format":null,"dimensions":null,"user":null,"providers":null,"policy":null})");
  EXPECT_FALSE(r.model);
  EXPECT_EQ(r.input_type, "");
  EXPECT_EQ(r.dimensions, 0);
}

TEST(parse_embed_request, texts_at_the_limits_are_accepted) {
  request_limits limits{3, 10};
  auto r = parse_ok(R"({"input":["0123456789","a","b"],"provider":"p"})", limits);
  EXPECT_EQ(r.texts.size(), 3u);
}

// ---- parse_embed_request: every bad input ---------------------------------------------------

TEST(parse_embed_request, rejects_bad_input) {
  expect_bad(R"({"provider":"p"})", "input");
  expect_bad(R"({"input":null,"provider":"p"})", "input");
  expect_bad(R"({"input":[],"provider":"p"})", "input");
  expect_bad(R"({"input":"","provider":"p"})", "input");
  expect_bad(R"({"input":["a",""],"provider":"p"})", "input");
  expect_bad(R"({"input":" \t\n ","provider":"p"})", "input");
  expect_bad(R"({"input":["ok","   "],"provider":"p"})", "input");
  expect_bad(R"({"input":["a",7],"provider":"p"})", "input");
  expect_bad(R"({"input":["a",{"t":"x"}],"provider":"p"})", "input");
  expect_bad(R"({"input":["a",null],"provider":"p"})", "input");
  expect_bad(R"({"input":42,"provider":"p"})", "input");
  expect_bad(R"({"input":{"text":"a"},"provider":"p"})", "input");
  expect_bad(R"({"input":"a\u0000b","provider":"p"})", "input");
  expect_bad(R"({"input":["ok","\u0000"],"provider":"p"})", "input");
}

TEST(parse_embed_request, rejects_token_id_arrays) {
  for (auto body :
       {R"({"input":[1,2,3],"provider":"p"})", R"({"input":[[1,2],[3]],"provider":"p"})"}) {
    auto e = parse_bad(body);
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "input");
    EXPECT_NE(e.message.find("token ids"), std::string::npos) << e.message;
  }
}

TEST(parse_embed_request, rejects_too_many_and_too_long_texts) {
  request_limits limits{3, 10};
  expect_bad(R"({"input":["a","b","c","d"],"provider":"p"})", "input", limits);
  expect_bad(R"({"input":"01234567890","provider":"p"})", "input", limits);
  expect_bad(R"({"input":["a","01234567890"],"provider":"p"})", "input", limits);
  auto e = parse_bad(R"({"input":["a","b","c","d"],"provider":"p"})", limits);
  EXPECT_NE(e.message.find("4 texts"), std::string::npos) << e.message;
  e = parse_bad(R"({"input":["a","01234567890"],"provider":"p"})", limits);
  EXPECT_NE(e.message.find("input[1]"), std::string::npos) << e.message;
}

TEST(parse_embed_request, rejects_bad_provider_choices) {
  expect_bad(R"({"input":"a","provider":"p","providers":["q"]})", "provider");
  expect_bad(R"({"input":"a","providers":["p","q","p"]})", "providers");
  expect_bad(R"({"input":"a","providers":[]})", "providers");
  expect_bad(R"({"input":"a","providers":"p"})", "providers");
  expect_bad(R"({"input":"a","providers":["p",3]})", "providers");
  expect_bad(R"({"input":"a","providers":["p",""]})", "providers");
  expect_bad(R"({"input":"a","provider":""})", "provider");
  expect_bad(R"({"input":"a","provider":7})", "provider");
  expect_bad(R"({"input":"a"})", "provider");
  auto e = parse_bad(R"({"input":"a","providers":["p","q","p"]})");
  EXPECT_NE(e.message.find("'p'"), std::string::npos) << e.message;
}

TEST(parse_embed_request, rejects_bad_options) {
  expect_bad(R"({"input":"a","provider":"p","policy":"first"})", "policy");
  expect_bad(R"({"input":"a","provider":"p","policy":1})", "policy");
  expect_bad(R"({"input":"a","provider":"p","input_type":"passage"})", "input_type");
  expect_bad(R"({"input":"a","provider":"p","input_type":"image"})", "input_type");
  expect_bad(R"({"input":"a","provider":"p","input_type":"Search_Query"})", "input_type");
  expect_bad(R"({"input":"a","provider":"p","encoding_format":"int8"})", "encoding_format");
  expect_bad(R"({"input":"a","provider":"p","encoding_format":true})", "encoding_format");
  expect_bad(R"({"input":"a","provider":"p","dimensions":0})", "dimensions");
  expect_bad(R"({"input":"a","provider":"p","dimensions":-1})", "dimensions");
  expect_bad(R"({"input":"a","provider":"p","dimensions":"x"})", "dimensions");
  expect_bad(R"({"input":"a","provider":"p","dimensions":256.5})", "dimensions");
  expect_bad(R"({"input":"a","provider":"p","dimensions":99999999999})", "dimensions");
  expect_bad(R"({"input":"a","provider":"p","model":5})", "model");
  expect_bad(R"({"input":"a","provider":"p","user":5})", "user");
  expect_bad(R"({"input":"a","provider":"p","id":{}})", "id");
  expect_bad(R"({"input":"a","provider":"p","id":1.5})", "id");
}

TEST(parse_embed_request, takes_cohere_input_types_as_emr_roles) {
  EXPECT_EQ(parse_ok(R"({"input":"a","provider":"p","input_type":"search_query"})").input_type,
            "query");
  EXPECT_EQ(parse_ok(R"({"input":"a","provider":"p","input_type":"search_document"})").input_type,
            "document");
  EXPECT_EQ(parse_ok(R"({"input":"a","provider":"p","input_type":"classification"})").input_type,
            "classification");
  EXPECT_EQ(parse_ok(R"({"input":"a","provider":"p","input_type":"clustering"})").input_type,
            "clustering");
}

TEST(parse_embed_request, takes_a_string_or_integer_id) {
  parse_ok(R"({"input":"a","provider":"p","id":"a-1"})");
  parse_ok(R"({"input":"a","provider":"p","id":7})");
}

// ---- batch envelopes ------------------------------------------------------------------------

TEST(parse_batch_id, takes_non_empty_strings_and_integers_as_sent) {
  auto text = std::get<batch_id>(parse_batch_id(json::parse(R"({"id":"order\r\n#1"})"), 0));
  EXPECT_EQ(text.text, "order\r\n#1");
  EXPECT_EQ(json::serialize(text.sent), R"("order\r\n#1")");
  auto number = std::get<batch_id>(parse_batch_id(json::parse(R"({"id":42})"), 0));
  EXPECT_EQ(number.text, "42");
  EXPECT_TRUE(number.sent.is_int64());
  auto negative = std::get<batch_id>(parse_batch_id(json::parse(R"({"id":-3})"), 0));
  EXPECT_EQ(negative.text, "-3");
  auto large = std::get<batch_id>(parse_batch_id(json::parse(R"({"id":18446744073709551615})"), 0));
  EXPECT_EQ(large.text, "18446744073709551615");
  EXPECT_EQ(json::serialize(large.sent), "18446744073709551615");
}

TEST(parse_batch_id, refuses_missing_empty_and_other_ids_naming_the_sub_request) {
  for (auto body : {R"({"input":"a"})", R"({"id":""})", R"({"id":null})", R"({"id":1.5})",
                    R"({"id":true})", R"({"id":["a"]})", R"("a")"}) {
    auto r = parse_batch_id(json::parse(body), 3);
    ASSERT_TRUE(std::holds_alternative<api_error>(r)) << body;
    const auto& e = std::get<api_error>(r);
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, "requests") << body;
    EXPECT_NE(e.message.find("requests[3]"), std::string::npos) << e.message;
  }
}

TEST(count_texts, counts_a_string_or_a_list_without_parsing_it) {
  EXPECT_EQ(count_texts(json::parse(R"({"input":"a"})")), 1u);
  EXPECT_EQ(count_texts(json::parse(R"({"input":["a","a","a"]})")), 3u);
  EXPECT_EQ(count_texts(json::parse(R"({"input":[1,2]})")), 2u);
  EXPECT_EQ(count_texts(json::parse(R"({"input":5})")), 0u);
  EXPECT_EQ(count_texts(json::parse(R"({"id":"a"})")), 0u);
  EXPECT_EQ(count_texts(json::parse(R"("a")")), 0u);
}

TEST(parse_embed_request, rejects_a_non_object) {
  auto r = parse_embed_request(json::parse(R"(["a"])"), {});
  ASSERT_TRUE(std::holds_alternative<api_error>(r));
  EXPECT_EQ(std::get<api_error>(r).status, 400);
}

// ---- parse_json_body ------------------------------------------------------------------------

std::string nested(int depth) {
  std::string s = "{\"input\":";
  for (int i = 1; i < depth; ++i)
    s += "[";
  s += "1";
  for (int i = 1; i < depth; ++i)
    s += "]";
  return s + "}";
}

TEST(parse_json_body, accepts_an_object) {
  auto r = parse_json_body(R"({"input":"a"})");
  ASSERT_TRUE(std::holds_alternative<json::value>(r));
  EXPECT_EQ(std::get<json::value>(r).at("input").as_string(), "a");
}

TEST(parse_json_body, rejects_bad_bodies) {
  for (std::string body : {std::string{"{input: 'a'}"}, std::string{R"({"input":["a","b")"},
                           std::string{R"([{"input":"a"}])"}, std::string{"\"a\""}, std::string{""},
                           std::string{"{} {}"}}) {
    auto r = parse_json_body(body);
    ASSERT_TRUE(std::holds_alternative<api_error>(r)) << body;
    EXPECT_EQ(std::get<api_error>(r).status, 400) << body;
    EXPECT_EQ(std::get<api_error>(r).type, "invalid_request") << body;
  }
}

TEST(parse_json_body, limits_depth_to_32) {
  EXPECT_TRUE(std::holds_alternative<json::value>(parse_json_body(nested(32))));
  auto r = parse_json_body(nested(33));
  ASSERT_TRUE(std::holds_alternative<api_error>(r));
  EXPECT_EQ(std::get<api_error>(r).status, 400);
  EXPECT_TRUE(std::holds_alternative<api_error>(parse_json_body(nested(5000))));
}

// ---- render_outcome -------------------------------------------------------------------------

// A matrix of fake vectors for `texts`, with its rows shuffled against input order.
shared_matrix matrix_of(const std::vector<std::string>& rows, int dims, std::int64_t tokens) {
  auto m = std::make_shared<embedding_matrix>();
  m->rows = rows.size();
  m->dims = dims;
  for (const auto& t : rows) {
    auto v = fake::fake_vector("m", "", t, dims);
    m->values.insert(m->values.end(), v.begin(), v.end());
  }
  m->total_tokens = tokens;
  return m;
}

provider_answer answer(std::string provider, int dims) {
  // Upstream rows ["c","a","b"]; caller input is ["a","b","c","a"] in two chunks.
  auto m = matrix_of({"c", "a", "b"}, dims, 12);
  provider_answer a;
  a.provider = std::move(provider);
  a.model = "m";
  a.chunks.push_back(chunk_result{m, {1, 2}, 5, std::nullopt, {}});
  a.chunks.push_back(chunk_result{m, {0, 1}, 7, std::nullopt, {}});
  a.tokens = 12;
  return a;
}

const std::vector<std::string> input_order{"a", "b", "c", "a"};

void expect_standard_response(const json::value& v, std::string_view provider, int dims,
                              bool base64) {
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("object").as_string(), "list");
  EXPECT_EQ(o.at("model").as_string(), "m");
  EXPECT_EQ(o.at("provider").as_string(), provider);
  EXPECT_EQ(o.at("usage").at("prompt_tokens").to_number<int>(), 12);
  EXPECT_EQ(o.at("usage").at("total_tokens").to_number<int>(), 12);
  const auto& data = o.at("data").as_array();
  ASSERT_EQ(data.size(), input_order.size());
  for (std::size_t i = 0; i < data.size(); ++i) {
    EXPECT_EQ(data[i].at("object").as_string(), "embedding");
    EXPECT_EQ(data[i].at("index").to_number<std::size_t>(), i);
    auto expected = fake::fake_vector("m", "", input_order[i], dims);
    std::vector<float> got;
    if (base64) {
      const auto& s = data[i].at("embedding").as_string();
      ASSERT_TRUE(decode_base64_floats({s.data(), s.size()}, got));
    } else {
      for (const auto& x : data[i].at("embedding").as_array())
        got.push_back(static_cast<float>(x.to_number<double>()));
    }
    EXPECT_EQ(got, expected) << "index " << i;
  }
}

TEST(render_outcome, float_shape_in_input_order) {
  caller_outcome out{{answer("voy", 8)}, std::nullopt};
  auto body = render_outcome(out, routing_policy::any, vector_encoding::float_array);
  expect_standard_response(json::parse(body), "voy", 8, false);
}

TEST(render_outcome, base64_shape_in_input_order) {
  caller_outcome out{{answer("voy", 7)}, std::nullopt};
  auto body = render_outcome(out, routing_policy::any, vector_encoding::base64);
  expect_standard_response(json::parse(body), "voy", 7, true);
}

TEST(render_outcome, policy_all_maps_every_provider) {
  caller_outcome out{{answer("alpha", 4), answer("beta", 6)}, std::nullopt};
  auto v = json::parse(render_outcome(out, routing_policy::all, vector_encoding::float_array));
  EXPECT_EQ(v.at("object").as_string(), "map");
  const auto& results = v.at("results").as_object();
  EXPECT_EQ(results.size(), 2u);
  expect_standard_response(results.at("alpha"), "alpha", 4, false);
  expect_standard_response(results.at("beta"), "beta", 6, false);
}

// ---- vector_bytes ---------------------------------------------------------------------------

TEST(vector_bytes, bounds_what_render_outcome_writes) {
  for (auto encoding : {vector_encoding::float_array, vector_encoding::base64}) {
    caller_outcome out{{answer("voy", 300)}, std::nullopt};
    auto bytes = vector_bytes(out, encoding);
    EXPECT_EQ(bytes, vector_bytes(4, 300, encoding));
    auto body = render_outcome(out, routing_policy::any, encoding);
    EXPECT_LE(body.size(), bytes + 256);
    EXPECT_GE(body.size(), bytes / 4);
  }
}

TEST(vector_bytes, the_default_budget_holds_2048_texts_of_3072_floats) {
  request_limits defaults;
  EXPECT_LE(vector_bytes(2048, 3072, vector_encoding::float_array), defaults.max_response_bytes);
  // ... but not 32 batched copies of 2,048 texts at 1,024 dimensions.
  EXPECT_GT(vector_bytes(32 * 2048, 1024, vector_encoding::float_array),
            defaults.max_response_bytes);
  EXPECT_LT(vector_bytes(10, 1024, vector_encoding::base64),
            vector_bytes(10, 1024, vector_encoding::float_array));
}

// ---- response_budget ------------------------------------------------------------------------

TEST(response_budget, takes_until_the_limit_then_names_it_in_a_413) {
  response_budget budget{1000};
  EXPECT_FALSE(budget.take(600));
  auto refused = budget.take(401);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);
  EXPECT_EQ(refused->code, "response_too_large");
  EXPECT_NE(refused->message.find("limits.max_response_bytes = 1000"), std::string::npos)
      << refused->message;
  EXPECT_NE(refused->message.find("400 left"), std::string::npos) << refused->message;
  // A refusal takes nothing: what is left still fits.
  EXPECT_FALSE(budget.take(400));
  EXPECT_TRUE(budget.take(1));
}

// ---- retry_after ----------------------------------------------------------------------------

TEST(retry_after, whole_seconds_for_429_and_503_that_carry_a_wait) {
  EXPECT_EQ(retry_after(api_error{429, "rate_limited", "m", {}, {}, 1500}), 2);
  EXPECT_EQ(retry_after(api_error{503, "provider_unavailable", "m", {}, {}, 0}), 1);
  EXPECT_EQ(retry_after(api_error{429, "rate_limited", "m", {}, {}, -1}), std::nullopt);
  EXPECT_EQ(retry_after(api_error{502, "provider_error", "m", {}, {}, 3000}), std::nullopt);
}

// ---- render_error ---------------------------------------------------------------------------

TEST(render_error, has_all_four_keys) {
  auto v = json::parse(
      render_error(api_error{400, "invalid_request", "bad \"thing\"", "input", "x_code", -1}));
  const auto& e = v.at("error").as_object();
  EXPECT_EQ(e.size(), 4u);
  EXPECT_EQ(e.at("message").as_string(), "bad \"thing\"");
  EXPECT_EQ(e.at("type").as_string(), "invalid_request");
  EXPECT_EQ(e.at("param").as_string(), "input");
  EXPECT_EQ(e.at("code").as_string(), "x_code");
  EXPECT_EQ(v.as_object().size(), 1u);
}

TEST(render_error, empty_param_and_code_are_null) {
  auto v = json::parse(render_error(api_error{502, "provider_error", "down", {}, {}, -1}));
  const auto& e = v.at("error").as_object();
  EXPECT_EQ(e.size(), 4u);
  EXPECT_TRUE(e.at("param").is_null());
  EXPECT_TRUE(e.at("code").is_null());
}

} // namespace
} // namespace emr

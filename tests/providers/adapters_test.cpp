// Provider adapters: request bodies, response decoding (and rejection), error shapes and limits.

#include "providers/provider.hpp"
#include "tools/fake_vectors.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

namespace json = boost::json;

namespace emr {
namespace {

std::unique_ptr<embedding_provider> adapter(provider_type type, std::string endpoint = {}) {
  provider_spec spec;
  spec.name = "p";
  spec.type = type;
  spec.endpoint = std::move(endpoint);
  return make_provider(spec);
}

std::unique_ptr<embedding_provider> voyage() {
  return adapter(provider_type::voyage, "https://api.voyageai.com/v1/embeddings");
}
std::unique_ptr<embedding_provider> cohere_v1() {
  return adapter(provider_type::cohere, "https://api.cohere.com/v1/embed");
}
std::unique_ptr<embedding_provider> cohere_v2() {
  return adapter(provider_type::cohere, "https://api.cohere.com/v2/embed");
}
std::unique_ptr<embedding_provider> openai() {
  return adapter(provider_type::openai, "https://api.openai.com/v1/embeddings");
}
std::unique_ptr<embedding_provider> compatible() {
  return adapter(provider_type::openai_compatible, "http://127.0.0.1:8080/v1/embeddings");
}

const std::vector<std::string> two_texts{"hello", "goodbye"};

upstream_batch batch(std::string model, std::string input_type = {}, int dims = 0) {
  upstream_batch b{std::move(model), std::move(input_type), dims, {}};
  for (const auto& t : two_texts)
    b.texts.push_back(t);
  return b;
}

json::object request_json(const embedding_provider& p, const upstream_batch& b) {
  return json::parse(p.encode_request(b)).as_object();
}

json::array strings(std::initializer_list<const char*> items) {
  json::array a;
  for (auto s : items)
    a.emplace_back(s);
  return a;
}

// ---- encode_request -------------------------------------------------------------------------

TEST(voyage_adapter, encodes_the_minimal_body) {
  auto body = request_json(*voyage(), batch("voyage-3.5"));
  EXPECT_EQ(body.size(), 3u) << json::serialize(body);
  EXPECT_EQ(body.at("input"), json::value(strings({"hello", "goodbye"})));
  EXPECT_EQ(body.at("model").as_string(), "voyage-3.5");
  EXPECT_EQ(body.at("encoding_format").as_string(), "base64");
  EXPECT_FALSE(body.contains("input_type"));
  EXPECT_FALSE(body.contains("output_dimension"));
}

TEST(voyage_adapter, encodes_input_type_and_output_dimension_when_set) {
  auto body = request_json(*voyage(), batch("voyage-3.5", "query", 512));
  EXPECT_EQ(body.size(), 5u) << json::serialize(body);
  EXPECT_EQ(body.at("input_type").as_string(), "query");
  EXPECT_EQ(body.at("output_dimension").to_number<int>(), 512);
  body = request_json(*voyage(), batch("voyage-3.5", "document"));
  EXPECT_EQ(body.at("input_type").as_string(), "document");
}

TEST(cohere_adapter, v1_maps_input_types) {
  auto p = cohere_v1();
  auto body = request_json(*p, batch("embed-english-v3.0", "query"));
  EXPECT_EQ(body.size(), 3u) << json::serialize(body);
  EXPECT_EQ(body.at("texts"), json::value(strings({"hello", "goodbye"})));
  EXPECT_EQ(body.at("model").as_string(), "embed-english-v3.0");
  EXPECT_EQ(body.at("input_type").as_string(), "search_query");
  EXPECT_EQ(request_json(*p, batch("embed-english-v3.0", "document")).at("input_type").as_string(),
            "search_document");
  EXPECT_EQ(request_json(*p, batch("embed-english-v3.0", "")).at("input_type").as_string(),
            "search_document");
  // v1 takes no output_dimension and no embedding_types (a bare float list comes back).
  body = request_json(*p, batch("embed-english-v3.0", "", 256));
  EXPECT_FALSE(body.contains("output_dimension"));
  EXPECT_FALSE(body.contains("embedding_types"));
}

TEST(cohere_adapter, v2_adds_embedding_types_and_output_dimension) {
  auto body = request_json(*cohere_v2(), batch("embed-v4.0", "query", 1024));
  EXPECT_EQ(body.size(), 5u) << json::serialize(body);
  EXPECT_EQ(body.at("texts"), json::value(strings({"hello", "goodbye"})));
  EXPECT_EQ(body.at("input_type").as_string(), "search_query");
  EXPECT_EQ(body.at("embedding_types"), json::value(strings({"float"})));
  EXPECT_EQ(body.at("output_dimension").to_number<int>(), 1024);
  body = request_json(*cohere_v2(), batch("embed-v4.0"));
  EXPECT_EQ(body.size(), 4u);
  EXPECT_EQ(body.at("input_type").as_string(), "search_document");
}

TEST(openai_adapter, encodes_base64_and_dimensions_when_set) {
  for (auto& p : {openai(), compatible()}) {
    auto body = request_json(*p, batch("text-embedding-3-small", "query"));
    EXPECT_EQ(body.size(), 3u) << json::serialize(body);
    EXPECT_EQ(body.at("input"), json::value(strings({"hello", "goodbye"})));
    EXPECT_EQ(body.at("model").as_string(), "text-embedding-3-small");
    EXPECT_EQ(body.at("encoding_format").as_string(), "base64");
    EXPECT_FALSE(body.contains("input_type")) << "OpenAI has no input_type";
    body = request_json(*p, batch("text-embedding-3-small", "", 256));
    EXPECT_EQ(body.at("dimensions").to_number<int>(), 256);
  }
}

// Cohere's roles beyond retrieval: Voyage embeds them as plain text, Cohere takes them as they
// are, OpenAI takes no role at all.
TEST(adapters, map_classification_and_clustering_per_provider) {
  for (const char* role : {"classification", "clustering"}) {
    auto body = request_json(*voyage(), batch("voyage-3.5", role));
    EXPECT_FALSE(body.contains("input_type")) << role << ": " << json::serialize(body);
    EXPECT_EQ(
        request_json(*cohere_v1(), batch("embed-english-v3.0", role)).at("input_type").as_string(),
        role);
    EXPECT_EQ(request_json(*cohere_v2(), batch("embed-v4.0", role)).at("input_type").as_string(),
              role);
    EXPECT_FALSE(
        request_json(*openai(), batch("text-embedding-3-small", role)).contains("input_type"))
        << role;
  }
}

TEST(adapters, encode_escapes_texts_faithfully) {
  upstream_batch b{"m", "", 0, {}};
  std::string tricky = "quote \" backslash \\ newline \n tab \t unicode \xC3\xA9";
  b.texts.push_back(tricky);
  for (auto& p : {voyage(), openai()})
    EXPECT_EQ(request_json(*p, b).at("input").as_array().at(0).as_string(), tricky);
  EXPECT_EQ(request_json(*cohere_v2(), b).at("texts").as_array().at(0).as_string(), tricky);
}

// ---- decode_response ------------------------------------------------------------------------

std::vector<float> vec(std::string_view text, int dims = 8) {
  return fake::fake_vector("m", "", text, dims);
}

json::array float_array(const std::vector<float>& v) {
  json::array a;
  for (float f : v)
    a.emplace_back(static_cast<double>(f));
  return a;
}

std::string data_list(const std::vector<std::pair<int, json::value>>& items, std::string usage) {
  json::array data;
  for (const auto& [index, embedding] : items)
    data.push_back(
        json::object{{"object", "embedding"}, {"embedding", embedding}, {"index", index}});
  json::object body{{"object", "list"}, {"data", data}, {"model", "m"}};
  body["usage"] = json::parse(usage);
  return json::serialize(body);
}

void expect_rows(const decoded_response& d, const std::vector<std::vector<float>>& rows) {
  ASSERT_TRUE(d.matrix) << d.error;
  EXPECT_TRUE(d.error.empty());
  ASSERT_EQ(d.matrix->rows, rows.size());
  ASSERT_EQ(d.matrix->dims, rows.front().size());
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (std::size_t c = 0; c < rows[r].size(); ++c)
      EXPECT_EQ(d.matrix->row(r)[c], rows[r][c]) << "row " << r << " col " << c;
}

void expect_rejected(const decoded_response& d, std::string_view why = {}) {
  EXPECT_FALSE(d.matrix);
  EXPECT_FALSE(d.error.empty());
  if (!why.empty()) {
    EXPECT_NE(d.error.find(why), std::string::npos) << d.error;
  }
}

TEST(voyage_adapter, decodes_the_documented_float_example) {
  auto body = R"({"object":"list",
 "data":[{"object":"embedding","embedding":[-0.016709786,0.026996311,-0.027496673,-0.012125067],"index":0},
         {"object":"embedding","embedding":[0.003613521,0.026428301,-0.009491397,-0.028471239],"index":1}],
 "model":"voyage-4-large",
 "usage":{"total_tokens":8}})";
  auto d = voyage()->decode_response(body, {2});
  expect_rows(d, {{-0.016709786f, 0.026996311f, -0.027496673f, -0.012125067f},
                  {0.003613521f, 0.026428301f, -0.009491397f, -0.028471239f}});
  EXPECT_EQ(d.matrix->total_tokens, 8);
}

TEST(voyage_adapter, decodes_the_documented_base64_example) {
  auto body =
      R"({"object":"list","data":[{"object":"embedding","embedding":"AAAAPwAAgL4AAIA/","index":0}],
 "model":"voyage-3.5","usage":{"total_tokens":3}})";
  auto d = voyage()->decode_response(body, {1});
  expect_rows(d, {{0.5f, -0.25f, 1.0f}});
  EXPECT_EQ(d.matrix->total_tokens, 3);
}

TEST(openai_adapter, decodes_base64_rows_out_of_order) {
  auto a = vec("a"), b = vec("b"), c = vec("c");
  auto body = data_list({{2, json::value(fake::float32_base64(c))},
                         {0, json::value(fake::float32_base64(a))},
                         {1, json::value(fake::float32_base64(b))}},
                        R"({"prompt_tokens":9,"total_tokens":9})");
  for (auto& p : {openai(), compatible()}) {
    auto d = p->decode_response(body, {3});
    expect_rows(d, {a, b, c});
    EXPECT_EQ(d.matrix->total_tokens, 9);
  }
}

TEST(openai_adapter, decodes_the_documented_float_example) {
  auto body = R"({"object":"list",
 "data":[{"object":"embedding","embedding":[0.0023064255,-0.009327292,-0.0028842222],"index":0}],
 "model":"text-embedding-ada-002",
 "usage":{"prompt_tokens":8,"total_tokens":8}})";
  auto d = openai()->decode_response(body, {1});
  expect_rows(d, {{0.0023064255f, -0.009327292f, -0.0028842222f}});
  EXPECT_EQ(d.matrix->total_tokens, 8);
}

TEST(cohere_adapter, decodes_the_v1_float_list) {
  auto body = R"({"id":"1c62213a-1f15-46f1-ac62-36f6bbaf3972",
 "texts":["hello","goodbye"],
 "embeddings":[[0.016296387,-0.008354187,-0.04699707,-0.07104492],
               [0.04663086,-0.023239136,0.008163452,-0.03945923]],
 "meta":{"api_version":{"version":"1"},"billed_units":{"input_tokens":2}},
 "response_type":"embeddings_floats"})";
  auto d = cohere_v1()->decode_response(body, {2});
  expect_rows(d, {{0.016296387f, -0.008354187f, -0.04699707f, -0.07104492f},
                  {0.04663086f, -0.023239136f, 0.008163452f, -0.03945923f}});
  EXPECT_EQ(d.matrix->total_tokens, 2);
}

TEST(cohere_adapter, decodes_the_v2_by_type_shape) {
  auto body = R"({"id":"da6e531f-54c6-4a73-bf92-f60566d8d753",
 "texts":["hello","goodbye"],
 "embeddings":{"float":[[0.016296387,-0.008354187,-0.04699707,-0.07104492],
                        [0.04663086,-0.023239136,0.008163452,-0.03945923]]},
 "meta":{"api_version":{"version":"2"},"billed_units":{"input_tokens":2}},
 "response_type":"embeddings_by_type"})";
  for (auto& p : {cohere_v2(), cohere_v1()}) {
    auto d = p->decode_response(body, {2});
    expect_rows(d, {{0.016296387f, -0.008354187f, -0.04699707f, -0.07104492f},
                    {0.04663086f, -0.023239136f, 0.008163452f, -0.03945923f}});
    EXPECT_EQ(d.matrix->total_tokens, 2);
  }
}

TEST(data_list_decoding, rejects_every_malformed_kind) {
  auto a = float_array(vec("a")), b = float_array(vec("b"));
  auto usage = R"({"total_tokens":2,"prompt_tokens":2})";
  std::vector<std::pair<std::string, std::string>> cases{
      {"non-JSON", "<html>502 Bad Gateway</html>"},
      {"truncated", data_list({{0, a}, {1, b}}, usage).substr(0, 60)},
      {"empty body", ""},
      {"not an object", "[1,2]"},
      {"no data", R"({"object":"list"})"},
      {"data not a list", R"({"data":{"index":0}})"},
      {"wrong count", data_list({{0, a}}, usage)},
      {"too many", data_list({{0, a}, {1, b}, {1, b}}, usage)},
      {"duplicate index", data_list({{0, a}, {0, b}}, usage)},
      {"out-of-range index", data_list({{0, a}, {2, b}}, usage)},
      {"negative index", data_list({{-1, a}, {1, b}}, usage)},
      {"missing index", R"({"data":[{"embedding":[1,2]},{"index":1,"embedding":[1,2]}]})"},
      {"string index",
       R"({"data":[{"index":"0","embedding":[1,2]},{"index":1,"embedding":[1,2]}]})"},
      {"missing embedding", R"({"data":[{"index":0},{"index":1,"embedding":[1,2]}]})"},
      {"mixed dimensions",
       R"({"data":[{"index":0,"embedding":[1,2,3]},{"index":1,"embedding":[1,2]}]})"},
      {"empty embedding", R"({"data":[{"index":0,"embedding":[]},{"index":1,"embedding":[]}]})"},
      {"non-numeric value",
       R"({"data":[{"index":0,"embedding":[1,"2"]},{"index":1,"embedding":[1,2]}]})"},
      {"null value",
       R"({"data":[{"index":0,"embedding":[1,null]},{"index":1,"embedding":[1,2]}]})"},
      {"embedding is an object",
       R"({"data":[{"index":0,"embedding":{"x":1}},{"index":1,"embedding":[1,2]}]})"},
      {"float overflow",
       R"({"data":[{"index":0,"embedding":[1e39,2]},{"index":1,"embedding":[1,2]}]})"},
      {"double overflow",
       R"({"data":[{"index":0,"embedding":[1e400,2]},{"index":1,"embedding":[1,2]}]})"},
      {"bad base64",
       R"({"data":[{"index":0,"embedding":"AAAAP!AAgL4="},{"index":1,"embedding":"AAAAPwAAgL4="}]})"},
      {"base64 not a float multiple",
       R"({"data":[{"index":0,"embedding":"AAAA"},{"index":1,"embedding":"AAAAPwAAgL4="}]})"},
      // Found by fuzzing: undefined behaviour in the base64 decoder before the fix.
      {"empty base64", R"({"data":[{"index":0,"embedding":""},{"index":1,"embedding":""}]})"},
      {"mixed base64 dimensions",
       R"({"data":[{"index":0,"embedding":"AAAAPw=="},{"index":1,"embedding":"AAAAPwAAgL4="}]})"},
      // Things only an event parser could mistake for an item or an answer.
      {"an index inside another field",
       R"({"data":[{"embedding":[1,2],"meta":{"index":0}},{"index":1,"embedding":[1,2]}]})"},
      {"an item that is no object", R"({"data":[[0,[1,2]],{"index":1,"embedding":[1,2]}]})"},
      {"a number for an item", R"({"data":[0,{"index":1,"embedding":[1,2]}]})"},
      {"a fractional index",
       R"({"data":[{"index":0.0,"embedding":[1,2]},{"index":1,"embedding":[1,2]}]})"},
      {"nested arrays",
       R"({"data":[{"index":0,"embedding":[[1],[2]]},{"index":1,"embedding":[1,2]}]})"},
      {"two data lists",
       R"({"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[1,2]}],"data":[]})"},
      {"text after the answer",
       R"({"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[1,2]}]} x)"},
  };
  for (const auto& [name, body] : cases)
    for (auto& p : {voyage(), openai()}) {
      SCOPED_TRACE(name);
      expect_rejected(p->decode_response(body, {2}));
    }
}

TEST(data_list_decoding, reads_each_row_as_it_is_parsed_whatever_the_order_of_fields) {
  // 0.99999994f is the bytes ff ff 7f 3f, base64 "//9/Pw==": written with JSON's escaped
  // slash, a string this long reaches the decoder in pieces (the parser unescapes into a
  // buffer of its own, and hands on what fills it).
  std::vector<float> first(2048, 0.99999994f), second(2048, 0.25f);
  first[1] = -0.5f;
  second[1] = 0.125f;
  std::string escaped;
  for (char c : fake::float32_base64(first))
    escaped += c == '/' ? std::string{"\\/"} : std::string{c};
  ASSERT_NE(escaped.find("\\/"), std::string::npos);
  auto body = R"({"usage":{"other_tokens":3,"total_tokens":5},"data":[)"
              R"({"embedding":")" +
              escaped +
              R"(","meta":{"index":0,"embedding":[9,9]},"object":"embedding","index":1},)"
              R"({"index":0,"object":"embedding","embedding":")" +
              fake::float32_base64(second) + R"("}],"model":"m"})";
  for (auto& p : {voyage(), openai()}) {
    auto d = p->decode_response(body, {2});
    expect_rows(d, {second, first});
  }
  EXPECT_EQ(voyage()->decode_response(body, {2}).matrix->total_tokens, 5);
  // Of two usages the last counts, and only an integer in it.
  auto tokens_with = [](const std::string& usage) {
    auto d =
        voyage()->decode_response(R"({"data":[{"index":0,"embedding":[1,2]}],)" + usage + "}", {1});
    return d.matrix ? d.matrix->total_tokens : -1;
  };
  EXPECT_EQ(tokens_with(R"("usage":{"total_tokens":5},"usage":[3])"), 0);
  EXPECT_EQ(tokens_with(R"("usage":{"total_tokens":5,"total_tokens":null})"), 0);
  EXPECT_EQ(tokens_with(R"("usage":{"total_tokens":5},"usage":{"total_tokens":7})"), 7);
}

TEST(data_list_decoding, rejects_base64_infinity) {
  std::vector<float> v{1.0f, std::numeric_limits<float>::infinity()};
  auto body = data_list({{0, json::value(fake::float32_base64(v))}}, R"({"total_tokens":1})");
  expect_rejected(voyage()->decode_response(body, {1}), "non-finite");
  std::vector<float> n{1.0f, std::numeric_limits<float>::quiet_NaN()};
  body = data_list({{0, json::value(fake::float32_base64(n))}}, R"({"total_tokens":1})");
  expect_rejected(voyage()->decode_response(body, {1}), "non-finite");
}

TEST(data_list_decoding, names_the_reason) {
  auto a = float_array(vec("a"));
  auto usage = R"({"total_tokens":2})";
  expect_rejected(voyage()->decode_response(data_list({{0, a}, {0, a}}, usage), {2}), "twice");
  expect_rejected(voyage()->decode_response(data_list({{0, a}, {5, a}}, usage), {2}),
                  "out of range");
  expect_rejected(voyage()->decode_response(data_list({{0, a}}, usage), {2}), "1 embeddings for 2");
  expect_rejected(voyage()->decode_response("{\"data\":[", {2}), "malformed JSON");
}

TEST(data_list_decoding, a_row_longer_than_any_model_s_is_refused_when_the_length_is_unknown) {
  auto usage = R"({"total_tokens":1})";
  std::vector<float> longest(most_unknown_dims, 0.5f), longer(most_unknown_dims + 1, 0.5f);
  auto body = data_list({{0, json::value(fake::float32_base64(longest))}}, usage);
  auto d = compatible()->decode_response(body, {1, 0, body.size() / 2});
  ASSERT_TRUE(d.matrix) << d.error;
  EXPECT_EQ(d.matrix->dims, most_unknown_dims);
  body = data_list({{0, json::value(fake::float32_base64(longer))}}, usage);
  expect_rejected(compatible()->decode_response(body, {1, 0, body.size() / 2}),
                  "more than emr accepts");
}

TEST(data_list_decoding, a_first_row_the_answer_cannot_hold_for_every_row_is_not_allocated) {
  // A thousand rows asked for; the answer's first row has 1,024 floats, but its bytes could hold
  // no more than a few rows of that length: the reader refuses before it sizes the matrix.
  auto body = data_list({{0, float_array(vec("a", 1024))}}, R"({"total_tokens":1})");
  expect_rejected(compatible()->decode_response(body, {1000, 0, body.size() / 2}),
                  "too short for 1000 embeddings of 1024 dimensions");
  EXPECT_TRUE(compatible()->decode_response(body, {1, 0, body.size() / 2}).matrix)
      << "one row of that length fits its own answer";
}

TEST(answer_length, is_bounded_by_the_rows_and_their_length) {
  EXPECT_LT(most_answer_bytes(1, 1024), 128u << 10);
  EXPECT_GT(most_answer_bytes(128, 1024), 128u * 1024 * 20) << "room for floats at length";
  EXPECT_EQ(most_answer_bytes(1, 0), most_answer_bytes(1, most_unknown_dims));
}

TEST(cohere_adapter, rejects_every_malformed_kind) {
  std::vector<std::pair<std::string, std::string>> cases{
      {"non-JSON", "upstream connect error"},
      {"truncated", R"({"embeddings":{"float":[[1,2],[3,)"},
      {"no embeddings", R"({"id":"x"})"},
      {"no float type", R"({"embeddings":{"int8":[[1,2],[3,4]]}})"},
      {"wrong count", R"({"embeddings":{"float":[[1,2]]}})"},
      {"too many", R"({"embeddings":{"float":[[1,2],[3,4],[5,6]]}})"},
      {"mixed dimensions", R"({"embeddings":{"float":[[1,2],[3,4,5]]}})"},
      {"non-numeric", R"({"embeddings":{"float":[[1,2],[3,"4"]]}})"},
      {"float overflow", R"({"embeddings":[[1,2],[3,1e39]]})"},
      {"not a list", R"({"embeddings":"AAAA"})"},
  };
  for (const auto& [name, body] : cases)
    for (auto& p : {cohere_v1(), cohere_v2()}) {
      SCOPED_TRACE(name);
      expect_rejected(p->decode_response(body, {2}));
    }
}

// A provider that ignores the requested dimensions (or answers another size than the model's)
// fails the call: its vectors never reach a caller.
TEST(adapters, wrong_dimensions_fail_the_call) {
  auto a = vec("a", 8), b = vec("b", 8);
  auto floats = data_list({{0, float_array(a)}, {1, float_array(b)}}, R"({"total_tokens":2})");
  auto base64 = data_list(
      {{0, json::value(fake::float32_base64(a))}, {1, json::value(fake::float32_base64(b))}},
      R"({"total_tokens":2})");
  json::array rows{float_array(a), float_array(b)};
  auto cohere_body = json::serialize(json::object{{"embeddings", json::object{{"float", rows}}}});
  std::vector<std::pair<std::unique_ptr<embedding_provider>, std::string>> cases;
  cases.emplace_back(voyage(), floats);
  cases.emplace_back(voyage(), base64);
  cases.emplace_back(openai(), base64);
  cases.emplace_back(compatible(), floats);
  cases.emplace_back(cohere_v1(), cohere_body);
  cases.emplace_back(cohere_v2(), cohere_body);
  for (const auto& [p, body] : cases) {
    SCOPED_TRACE(body.substr(0, 80));
    expect_rejected(p->decode_response(body, {2, 4}), "8 dimensions where 4 were expected");
    expect_rejected(p->decode_response(body, {2, 1024}), "8 dimensions where 1024 were expected");
    expect_rows(p->decode_response(body, {2, 8}), {a, b});
    expect_rows(p->decode_response(body, {2, 0}), {a, b});
  }
}

TEST(adapters, the_first_row_sets_the_dimensions_when_none_are_expected) {
  auto body = R"({"data":[{"index":1,"embedding":[1,2,3]},{"index":0,"embedding":[1,2]}]})";
  expect_rejected(voyage()->decode_response(body, {2, 0}), "different dimensions");
  expect_rejected(voyage()->decode_response(body, {2, 2}), "3 dimensions where 2");
}

TEST(adapters, expected_dimensions_are_the_requested_else_the_models) {
  EXPECT_EQ(expected_dimensions(*voyage(), batch("voyage-3.5", {}, 256)), 256u);
  EXPECT_EQ(expected_dimensions(*voyage(), batch("voyage-3.5")), 1024u);
  EXPECT_EQ(expected_dimensions(*voyage(), batch("voyage-3-lite")), 512u);
  EXPECT_EQ(expected_dimensions(*voyage(), batch("voyage-future-9")), 0u) << "unknown: any, alike";
  EXPECT_EQ(expected_dimensions(*cohere_v2(), batch("embed-v4.0", {}, 512)), 512u);
  EXPECT_EQ(expected_dimensions(*cohere_v2(), batch("embed-v4.0")), 1536u);
  EXPECT_EQ(expected_dimensions(*cohere_v1(), batch("embed-english-light-v3.0")), 384u);
  EXPECT_EQ(expected_dimensions(*openai(), batch("text-embedding-3-large")), 3072u);
  EXPECT_EQ(expected_dimensions(*openai(), batch("text-embedding-3-small", {}, 100)), 100u);
  EXPECT_EQ(expected_dimensions(*compatible(), batch("text-embedding-3-small")), 0u)
      << "a self-hosted server's model is whatever it loaded";
  EXPECT_EQ(expected_dimensions(*compatible(), batch("bge", {}, 384)), 384u);
}

// The fake provider's table comes from providers.md too: both must agree, model by model.
TEST(adapters, native_dimensions_agree_with_the_fake_provider) {
  const std::vector<std::pair<std::unique_ptr<embedding_provider>, std::vector<std::string>>>
      tables = [] {
        std::vector<std::pair<std::unique_ptr<embedding_provider>, std::vector<std::string>>> t;
        t.emplace_back(voyage(),
                       std::vector<std::string>{"voyage-4-large", "voyage-4", "voyage-4-lite",
                                                "voyage-3-large", "voyage-3.5", "voyage-3.5-lite",
                                                "voyage-code-3", "voyage-finance-2", "voyage-law-2",
                                                "voyage-code-2", "voyage-3", "voyage-3-lite",
                                                "voyage-multilingual-2", "voyage-large-2-instruct",
                                                "voyage-large-2", "voyage-2"});
        t.emplace_back(cohere_v2(), std::vector<std::string>{
                                        "embed-v4.0", "embed-english-v3.0",
                                        "embed-multilingual-v3.0", "embed-english-light-v3.0",
                                        "embed-multilingual-light-v3.0", "embed-english-v2.0",
                                        "embed-english-light-v2.0", "embed-multilingual-v2.0"});
        t.emplace_back(openai(),
                       std::vector<std::string>{"text-embedding-3-small", "text-embedding-3-large",
                                                "text-embedding-ada-002"});
        return t;
      }();
  for (const auto& [p, models] : tables)
    for (const auto& model : models) {
      EXPECT_GT(fake::default_dims(model), 0) << model;
      EXPECT_EQ(p->native_dimensions(model), static_cast<std::size_t>(fake::default_dims(model)))
          << model;
    }
}

// ---- error_message --------------------------------------------------------------------------

TEST(adapters, error_message_reads_each_providers_shape) {
  EXPECT_EQ(voyage()->error_message(R"({"detail":"Provided API key is invalid."})"),
            "Provided API key is invalid.");
  EXPECT_EQ(cohere_v1()->error_message(R"({"id":"abc","message":"invalid api token"})"),
            "invalid api token");
  EXPECT_EQ(cohere_v2()->error_message(R"({"message":"model 'xyz' not found"})"),
            "model 'xyz' not found");
  auto openai_body =
      R"({"error":{"message":"Requested 453357 tokens, max 300000 tokens per request","type":"max_tokens_per_request","param":null,"code":"max_tokens_per_request"}})";
  EXPECT_EQ(openai()->error_message(openai_body),
            "Requested 453357 tokens, max 300000 tokens per request");
  EXPECT_EQ(compatible()->error_message(
                R"({"error":"Input validation error","error_type":"Validation"})"),
            "Input validation error");
  EXPECT_EQ(
      compatible()->error_message(
          R"({"message":"batch size 64 > maximum allowed batch size 32","type":"validation"})"),
      "batch size 64 > maximum allowed batch size 32");
}

TEST(adapters, error_message_falls_back_to_a_printable_excerpt) {
  EXPECT_EQ(voyage()->error_message("<html>\n502\n</html>"), "<html> 502 </html>");
  EXPECT_EQ(openai()->error_message(R"({"detail":"x"})"), R"({"detail":"x"})");
  std::string long_body(500, 'a');
  // fmt rather than string + "...", which g++ 12 misreads as writing out of bounds.
  EXPECT_EQ(cohere_v1()->error_message(long_body), fmt::format("{}...", std::string(200, 'a')));
}

// ---- limits and dimensions ------------------------------------------------------------------

TEST(adapters, limits_per_type_and_model) {
  EXPECT_EQ(voyage()->limits("voyage-3.5").max_tokens, 320'000u);
  EXPECT_EQ(voyage()->limits("voyage-3.5").max_texts, 1000u);
  EXPECT_EQ(voyage()->limits("voyage-code-3").max_tokens, 120'000u);
  EXPECT_EQ(voyage()->limits("voyage-3.5-lite").max_tokens, 1'000'000u);
  EXPECT_EQ(voyage()->limits("voyage-future-9").max_tokens, 120'000u)
      << "unknown: the smallest cap";
  EXPECT_EQ(cohere_v1()->limits("embed-english-v3.0").max_texts, 96u);
  EXPECT_EQ(cohere_v2()->limits("embed-v4.0").max_texts, 96u);
  EXPECT_EQ(cohere_v2()->limits("embed-v4.0").max_tokens, 0u);
  EXPECT_EQ(openai()->limits("text-embedding-3-small").max_texts, 2048u);
  EXPECT_EQ(openai()->limits("text-embedding-3-small").max_tokens, 300'000u);
  EXPECT_EQ(compatible()->limits("bge").max_texts, 32u);
}

TEST(adapters, model_limits_apply_the_operators_max_batch) {
  provider_spec spec{"v", provider_type::voyage, "https://x/v1/embeddings", "voyage-3.5", "K", 64,
                     true};
  auto p = make_provider(spec);
  EXPECT_EQ(model_limits(spec, *p, spec.model).max_texts, 64u);
  spec.max_batch = 5000;
  EXPECT_EQ(model_limits(spec, *p, spec.model).max_texts, 1000u)
      << "never above the provider's maximum";
  spec.type = provider_type::openai_compatible;
  p = make_provider(spec);
  EXPECT_EQ(model_limits(spec, *p, spec.model).max_texts, 5000u)
      << "self-hosted: the operator knows";
}

TEST(adapters, model_limits_are_the_asked_models_not_the_registered_ones) {
  // A `provider/model` route: voyage-3.5 is registered, voyage-3-large asked for.
  provider_spec spec{"v", provider_type::voyage, "https://x/v1/embeddings", "voyage-3.5", "K", 64,
                     true};
  auto p = make_provider(spec);
  auto asked = model_limits(spec, *p, "voyage-3-large");
  EXPECT_EQ(asked.max_texts, 64u);
  EXPECT_EQ(asked.max_tokens, p->limits("voyage-3-large").max_tokens);
  EXPECT_NE(asked.max_tokens, p->limits("voyage-3.5").max_tokens);
}

TEST(adapters, supports_dimensions) {
  EXPECT_TRUE(voyage()->supports_dimensions("voyage-3.5", 256));
  EXPECT_TRUE(voyage()->supports_dimensions("voyage-3.5", 2048));
  EXPECT_FALSE(voyage()->supports_dimensions("voyage-3.5", 300));
  EXPECT_FALSE(voyage()->supports_dimensions("voyage-3", 512));
  EXPECT_FALSE(voyage()->supports_dimensions("unknown", 512));
  EXPECT_TRUE(cohere_v2()->supports_dimensions("embed-v4.0", 1536));
  EXPECT_FALSE(cohere_v2()->supports_dimensions("embed-v4.0", 2048));
  EXPECT_FALSE(cohere_v2()->supports_dimensions("embed-english-v3.0", 512));
  EXPECT_FALSE(cohere_v1()->supports_dimensions("embed-v4.0", 1024));
  EXPECT_TRUE(openai()->supports_dimensions("text-embedding-3-small", 1536));
  EXPECT_FALSE(openai()->supports_dimensions("text-embedding-3-small", 1537));
  EXPECT_TRUE(openai()->supports_dimensions("text-embedding-3-large", 3072));
  EXPECT_FALSE(openai()->supports_dimensions("text-embedding-ada-002", 512));
  EXPECT_TRUE(compatible()->supports_dimensions("anything", 384));
  EXPECT_FALSE(compatible()->supports_dimensions("anything", 0));
}

TEST(adapters, make_provider_picks_cohere_version_from_the_endpoint) {
  upstream_batch b = batch("embed-v4.0");
  EXPECT_FALSE(request_json(*cohere_v1(), b).contains("embedding_types"));
  EXPECT_TRUE(request_json(*cohere_v2(), b).contains("embedding_types"));
}

} // namespace
} // namespace emr

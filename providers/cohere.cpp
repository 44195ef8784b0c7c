// Cohere: POST /v1/embed and POST /v2/embed (providers.md §2).

#include "providers/adapters.hpp"
#include "providers/response_reader.hpp"

#include <array>

namespace json = boost::json;

namespace emr {

namespace {

// Cohere v3+ models require an input type; emr's neutral default is the document role.
// classification and clustering are Cohere's own names and pass as they are.
std::string_view cohere_input_type(std::string_view input_type) {
  if (input_type == "query")
    return "search_query";
  if (input_type == "classification" || input_type == "clustering")
    return input_type;
  return "search_document";
}

struct cohere_model {
  std::string_view name;
  std::size_t native_dimensions;
};

// Default dimensions by model (providers.md §2.5).
constexpr std::array cohere_models{
    cohere_model{"embed-v4.0", 1536},
    cohere_model{"embed-english-v3.0", 1024},
    cohere_model{"embed-english-light-v3.0", 384},
    cohere_model{"embed-multilingual-v3.0", 1024},
    cohere_model{"embed-multilingual-light-v3.0", 384},
    cohere_model{"embed-english-v2.0", 4096},
    cohere_model{"embed-english-light-v2.0", 1024},
    cohere_model{"embed-multilingual-v2.0", 768},
};

class cohere_provider final : public embedding_provider {
public:
  explicit cohere_provider(bool v2) : v2_(v2) {}

  std::string encode_request(const upstream_batch& batch) const override {
    json::object body;
    body["texts"] = text_array(batch.texts);
    body["model"] = batch.model;
    body["input_type"] = cohere_input_type(batch.input_type);
    if (v2_) {
      // Older v2 servers required embedding_types; sending it keeps both generations working.
      body["embedding_types"] = json::array{"float"};
      if (batch.dimensions > 0)
        body["output_dimension"] = batch.dimensions;
    }
    return json::serialize(body);
  }

  decoded_response decode_response(std::string_view body, expected_shape expected) const override {
    response_reader reader{expected};
    std::string error;
    auto v = parse_upstream_json(body, error);
    if (!v)
      return reader.fail(error);
    auto obj = v->if_object();
    auto embeddings = obj ? obj->if_contains("embeddings") : nullptr;
    if (!embeddings)
      return reader.fail("upstream response has no embeddings: " + body_excerpt(body));
    // v1 without embedding_types answers a bare list; every other shape is keyed by type.
    const json::value* rows = embeddings;
    if (auto by_type = embeddings->if_object())
      rows = by_type->if_contains("float");
    if (!rows || !rows->is_array())
      return reader.fail("upstream response has no float embeddings");
    std::int64_t index = 0;
    for (const auto& row : rows->get_array())
      if (!reader.add(index++, row))
        return reader.finish(0);
    std::int64_t tokens = 0;
    if (auto meta = obj->if_contains("meta"); meta && meta->is_object())
      if (auto billed = meta->get_object().if_contains("billed_units");
          billed && billed->is_object())
        if (auto t = billed->get_object().if_contains("input_tokens"); t && t->is_int64())
          tokens = t->get_int64();
    return reader.finish(tokens);
  }

  std::string error_message(std::string_view body) const override {
    std::string ignored;
    if (auto v = parse_upstream_json(body, ignored))
      if (auto message = string_field(*v, "message"))
        return *message;
    return body_excerpt(body);
  }

  batch_limits limits(std::string_view) const override { return {96, 0}; }

  bool supports_dimensions(std::string_view model, int dimensions) const override {
    return v2_ && model.starts_with("embed-v4") &&
           (dimensions == 256 || dimensions == 512 || dimensions == 1024 || dimensions == 1536);
  }

  std::size_t native_dimensions(std::string_view model) const override {
    for (const auto& m : cohere_models)
      if (m.name == model)
        return m.native_dimensions;
    return 0;
  }

private:
  bool v2_;
};

} // namespace

std::unique_ptr<embedding_provider> make_cohere_provider(bool v2) {
  return std::make_unique<cohere_provider>(v2);
}

} // namespace emr

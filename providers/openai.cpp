// OpenAI POST /v1/embeddings, and the self-hosted servers that speak it (providers.md §3, §4).

#include "providers/adapters.hpp"
#include "providers/response_reader.hpp"

namespace json = boost::json;

namespace emr {

namespace {

class openai_provider final : public embedding_provider {
public:
  explicit openai_provider(bool compatible) : compatible_(compatible) {}

  std::string encode_request(const upstream_batch& batch) const override {
    json::object body;
    body["input"] = text_array(batch.texts);
    body["model"] = batch.model;
    body["encoding_format"] = "base64";
    // OpenAI's models take no input role: batch.input_type is not sent.
    if (batch.dimensions > 0)
      body["dimensions"] = batch.dimensions;
    return json::serialize(body);
  }

  decoded_response decode_response(std::string_view body, expected_shape expected) const override {
    return decode_data_list(body, expected, "prompt_tokens");
  }

  std::string error_message(std::string_view body) const override {
    std::string ignored;
    if (auto v = parse_upstream_json(body, ignored)) {
      if (auto obj = v->if_object())
        if (auto err = obj->if_contains("error")) {
          if (auto message = string_field(*err, "message"))
            return *message;
          if (auto s = err->if_string()) // TEI's native routes
            return std::string{s->data(), s->size()};
        }
      if (auto message = string_field(*v, "message")) // TEI's OpenAI route
        return *message;
    }
    return body_excerpt(body);
  }

  batch_limits limits(std::string_view) const override {
    // Self-hosted servers batch far less; their operators set max batch (TEI's default is 32).
    return compatible_ ? batch_limits{32, 0} : batch_limits{2048, 300'000};
  }

  bool supports_dimensions(std::string_view model, int dimensions) const override {
    if (compatible_)
      return dimensions > 0;
    if (model == "text-embedding-3-small")
      return dimensions > 0 && dimensions <= 1536;
    if (model == "text-embedding-3-large")
      return dimensions > 0 && dimensions <= 3072;
    return false;
  }

  std::size_t native_dimensions(std::string_view model) const override {
    // A self-hosted server serves whatever model it loaded, whatever the name (providers.md §4).
    if (compatible_)
      return 0;
    if (model == "text-embedding-3-small" || model == "text-embedding-ada-002")
      return 1536;
    if (model == "text-embedding-3-large")
      return 3072;
    return 0;
  }

private:
  bool compatible_;
};

} // namespace

std::unique_ptr<embedding_provider> make_openai_provider(bool compatible) {
  return std::make_unique<openai_provider>(compatible);
}

} // namespace emr

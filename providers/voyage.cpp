// Voyage AI: POST /v1/embeddings (providers.md §1).

#include "providers/adapters.hpp"
#include "providers/response_reader.hpp"

#include <array>
#include <optional>

namespace json = boost::json;

namespace emr {

namespace {

struct voyage_model {
  std::string_view name;
  std::size_t max_tokens;
  bool flexible_dimensions;
  std::size_t native_dimensions;
};

// Per-request token caps, Matryoshka support and default dimensions by model (providers.md §1.2,
// §1.4).
constexpr std::array voyage_models{
    voyage_model{"voyage-4-large", 120'000, true, 1024},
    voyage_model{"voyage-4", 320'000, true, 1024},
    voyage_model{"voyage-4-lite", 1'000'000, true, 1024},
    voyage_model{"voyage-3-large", 120'000, true, 1024},
    voyage_model{"voyage-3.5", 320'000, true, 1024},
    voyage_model{"voyage-3.5-lite", 1'000'000, true, 1024},
    voyage_model{"voyage-code-3", 120'000, true, 1024},
    voyage_model{"voyage-finance-2", 120'000, false, 1024},
    voyage_model{"voyage-law-2", 120'000, false, 1024},
    voyage_model{"voyage-code-2", 120'000, false, 1536},
    voyage_model{"voyage-3", 320'000, false, 1024},
    voyage_model{"voyage-3-lite", 1'000'000, false, 512},
    voyage_model{"voyage-multilingual-2", 120'000, false, 1024},
    voyage_model{"voyage-large-2-instruct", 120'000, false, 1024},
    voyage_model{"voyage-large-2", 120'000, false, 1536},
    voyage_model{"voyage-2", 320'000, false, 1024},
};

// Voyage knows the retrieval roles only; other roles embed as plain text (null).
std::optional<std::string_view> voyage_input_type(std::string_view input_type) {
  if (input_type == "query" || input_type == "document")
    return input_type;
  return std::nullopt;
}

const voyage_model* find_model(std::string_view name) {
  for (const auto& m : voyage_models)
    if (m.name == name)
      return &m;
  return nullptr;
}

class voyage_provider final : public embedding_provider {
public:
  std::string encode_request(const upstream_batch& batch) const override {
    json::object body;
    body["input"] = text_array(batch.texts);
    body["model"] = batch.model;
    if (auto input_type = voyage_input_type(batch.input_type))
      body["input_type"] = *input_type;
    if (batch.dimensions > 0)
      body["output_dimension"] = batch.dimensions;
    // base64 spares both sides printing and parsing decimal floats.
    body["encoding_format"] = "base64";
    return json::serialize(body);
  }

  decoded_response decode_response(std::string_view body, expected_shape expected) const override {
    return decode_data_list(body, expected, "total_tokens");
  }

  std::string error_message(std::string_view body) const override {
    std::string ignored;
    if (auto v = parse_upstream_json(body, ignored))
      if (auto detail = string_field(*v, "detail"))
        return *detail;
    return body_excerpt(body);
  }

  batch_limits limits(std::string_view model) const override {
    auto m = find_model(model);
    // Unknown (newer) models get the smallest documented cap, which every model accepts.
    return {1000, m ? m->max_tokens : 120'000};
  }

  bool supports_dimensions(std::string_view model, int dimensions) const override {
    auto m = find_model(model);
    return m && m->flexible_dimensions &&
           (dimensions == 256 || dimensions == 512 || dimensions == 1024 || dimensions == 2048);
  }

  std::size_t native_dimensions(std::string_view model) const override {
    auto m = find_model(model);
    return m ? m->native_dimensions : 0;
  }
};

} // namespace

std::unique_ptr<embedding_provider> make_voyage_provider() {
  return std::make_unique<voyage_provider>();
}

} // namespace emr

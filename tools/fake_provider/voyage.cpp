// Voyage's wire format (providers.md §1, §6.2): POST /v1/embeddings with "input", answered by
// the list shape, refused with {"detail": ...}.

#include "tools/fake_provider/json_fields.hpp"
#include "tools/fake_provider/list_answer.hpp"
#include "tools/fake_provider/wire_format.hpp"
#include "tools/fake_vectors.hpp"

#include <algorithm>
#include <map>
#include <string_view>

namespace emr::fake {

namespace {

namespace json = boost::json;

struct voyage_limits {
  int context;
  int token_cap;
  bool flexible; // output_dimension and non-float dtypes allowed
};

voyage_limits voyage_limits_for(std::string_view model) {
  static const std::map<std::string_view, voyage_limits> table = {
      {"voyage-4-large", {32000, 120000, true}},
      {"voyage-4", {32000, 320000, true}},
      {"voyage-4-lite", {32000, 1000000, true}},
      {"voyage-3-large", {32000, 120000, true}},
      {"voyage-3.5", {32000, 320000, true}},
      {"voyage-3.5-lite", {32000, 1000000, true}},
      {"voyage-code-3", {32000, 120000, true}},
      {"voyage-finance-2", {32000, 120000, false}},
      {"voyage-law-2", {16000, 120000, false}},
      {"voyage-code-2", {16000, 120000, false}},
      {"voyage-3", {32000, 320000, false}},
      {"voyage-3-lite", {32000, 1000000, false}},
      {"voyage-multilingual-2", {32000, 120000, false}},
      {"voyage-large-2-instruct", {16000, 120000, false}},
      {"voyage-large-2", {16000, 120000, false}},
      {"voyage-2", {4000, 320000, false}}};
  const auto it = table.find(model);
  return it != table.end() ? it->second : voyage_limits{4000, 120000, false}; // deprecated models
}

bool is_voyage_model(std::string_view m) {
  return m.starts_with("voyage-") && default_dims(m);
}

std::optional<api_error> parse_voyage_input(const json::value& input, embed_job& job) {
  if (input.is_string()) {
    if (input.get_string().empty())
      return bad_request("Input cannot be an empty string.");
    job.texts.emplace_back(input.get_string());
    return std::nullopt;
  }
  if (!input.is_array())
    return bad_request("Input must be a string or a list of strings.");
  const json::array& items = input.get_array();
  if (items.empty())
    return bad_request("Input cannot be an empty list.");
  if (items.size() > 1000)
    return bad_request("The batch size limit is 1000. Your batch size is " +
                       std::to_string(items.size()) + ".");
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_string())
      return bad_request("Input at index " + std::to_string(i) + " is not a string.");
    if (items[i].get_string().empty())
      return bad_request("Input at index " + std::to_string(i) + " is an empty string.");
    job.texts.emplace_back(items[i].get_string());
  }
  return std::nullopt;
}

std::optional<api_error> parse_voyage_options(const json::object& o, embed_job& job,
                                              const voyage_limits& limits) {
  if (const json::value* t = field(o, "input_type")) {
    if (!t->is_string() || (t->get_string() != "query" && t->get_string() != "document"))
      return bad_request("Value of input_type must be null, 'query' or 'document'.");
    job.input_type = t->get_string();
  }
  job.dims = default_dims(job.model);
  if (const json::value* d = field(o, "output_dimension")) {
    const auto k = as_integer(*d);
    const bool allowed =
        k &&
        (limits.flexible ? (*k == 256 || *k == 512 || *k == 1024 || *k == 2048) : *k == job.dims);
    if (!allowed)
      return bad_request("Model " + job.model + " does not support output_dimension " +
                         json::serialize(*d) + ".");
    job.dims = static_cast<int>(*k);
  }
  if (const json::value* t = field(o, "output_dtype")) {
    static const std::map<std::string_view, dtype> dtypes = {{"float", dtype::float32},
                                                             {"int8", dtype::int8},
                                                             {"uint8", dtype::uint8},
                                                             {"binary", dtype::binary},
                                                             {"ubinary", dtype::ubinary}};
    const auto it = t->is_string() ? dtypes.find(t->get_string()) : dtypes.end();
    if (it == dtypes.end())
      return bad_request(
          "Value of output_dtype must be one of float, int8, uint8, binary, ubinary.");
    if (it->second != dtype::float32 && !limits.flexible)
      return bad_request("Model " + job.model + " only supports output_dtype float.");
    job.enc.type = it->second;
  }
  if (const json::value* e = field(o, "encoding_format")) {
    if (!e->is_string() || e->get_string() != "base64")
      return bad_request("Value of encoding_format must be null or 'base64'.");
    job.enc.base64 = true;
  }
  return std::nullopt;
}

std::optional<api_error> parse_voyage(const json::object& o, embed_job& job) {
  const json::value* model = field(o, "model");
  if (!model)
    return bad_request("Field 'model' is required.");
  if (!model->is_string() || !is_voyage_model(model->get_string()))
    return bad_request(
        "Model " +
        (model->is_string() ? std::string(model->get_string()) : json::serialize(*model)) +
        " is not supported.");
  job.model = model->get_string();
  const voyage_limits limits = voyage_limits_for(job.model);

  const json::value* input = field(o, "input");
  if (!input)
    return bad_request("Field 'input' is required.");
  if (auto err = parse_voyage_input(*input, job))
    return err;

  bool truncation = true;
  if (const json::value* t = field(o, "truncation")) {
    if (!t->is_bool())
      return bad_request("Value of truncation must be a boolean.");
    truncation = t->get_bool();
  }
  if (auto err = parse_voyage_options(o, job, limits))
    return err;

  for (std::size_t i = 0; i < job.texts.size(); ++i) {
    const int tokens = fake_token_count(job.texts[i]);
    if (tokens > limits.context && !truncation)
      return bad_request("Input at index " + std::to_string(i) + " has " + std::to_string(tokens) +
                         " tokens, over the context length of " + std::to_string(limits.context) +
                         " tokens for model " + job.model +
                         ". Set truncation to true to truncate it.");
    job.total_tokens += std::min(tokens, limits.context);
  }
  if (job.total_tokens > limits.token_cap)
    return bad_request("Request to model '" + job.model +
                       "' failed. The max allowed tokens per submitted batch is " +
                       std::to_string(limits.token_cap) + ". Your batch has " +
                       std::to_string(job.total_tokens) +
                       " tokens after truncation. Please lower the number of tokens in the batch.");
  return std::nullopt;
}

class voyage_format final : public wire_format {
public:
  std::optional<api_error> validate(const json::object& body, embed_job& job) const override {
    return parse_voyage(body, job);
  }

  std::string render(const embed_job& job, malformed shape) const override {
    return render_list(job, shape, {.index_before_embedding = false, .prompt_tokens = false});
  }

  std::string error_body(const api_error& e) const override {
    return json::serialize(json::object{{"detail", e.message}});
  }

  api_error key_error(const std::string& key) const override {
    return plain_error(401, key.empty()
                                ? "No API key provided. Send it as 'Authorization: Bearer <key>'."
                                : "Provided API key is invalid.");
  }

  api_error json_error(const json::error_code& ec) const override {
    return bad_request("Request body is not valid JSON: " + ec.message());
  }

  api_error injected_error(int status, const std::string&) const override {
    if (status == 429)
      return plain_error(429, "Rate limit exceeded. Please try again later.");
    if (status == 500)
      return plain_error(500, "Internal Server Error");
    return injected_status_error(status);
  }

  api_error poison_error(std::size_t index, const std::string& model) const override {
    return bad_request("Input at index " + std::to_string(index) +
                       " is too long: it exceeds the context length of model " + model +
                       ". Set truncation to true to truncate it.");
  }

  api_error rate_limit_error(const rate_limiter::verdict& v,
                             const std::string& model) const override {
    const std::string per = v.by_tokens ? "tokens per min (TPM)" : "requests per min (RPM)";
    return plain_error(429, "Rate limit exceeded for model " + model + ": limit of " +
                                std::to_string(v.limit) + " " + per +
                                " reached. Please try again later.");
  }
};

} // namespace

const wire_format& voyage_wire() {
  static const voyage_format format;
  return format;
}

} // namespace emr::fake

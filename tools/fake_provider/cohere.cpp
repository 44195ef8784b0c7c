// Cohere's wire format, v1 and v2 (providers.md §2, §6.3): POST /v1/embed or /v2/embed with
// "texts" (v2 also "inputs"), answered with positional vectors, refused with {"message", "id"}.

#include "tools/fake_provider/embedding_encoding.hpp"
#include "tools/fake_provider/json_fields.hpp"
#include "tools/fake_provider/wire_format.hpp"
#include "tools/fake_vectors.hpp"

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <algorithm>
#include <limits>
#include <map>
#include <string_view>
#include <vector>

namespace emr::fake {

namespace {

namespace json = boost::json;

std::string cohere_id() {
  thread_local boost::uuids::random_generator_mt19937 generate;
  return boost::uuids::to_string(generate());
}

bool is_cohere_model(std::string_view m) {
  return m.starts_with("embed-") && default_dims(m);
}

int cohere_context(std::string_view model) {
  if (model == "embed-v4.0")
    return 128000;
  if (model == "embed-multilingual-v2.0")
    return 256;
  return 512;
}

std::optional<api_error> check_cohere_fields(const json::object& o, bool v2) {
  static const std::vector<std::string_view> v1_fields = {
      "texts", "images", "model", "input_type", "embedding_types", "truncate"};
  static const std::vector<std::string_view> v2_only = {"inputs", "output_dimension", "max_tokens",
                                                        "priority"};
  for (const auto& [key, value] : o) {
    const bool known = std::find(v1_fields.begin(), v1_fields.end(), key) != v1_fields.end() ||
                       (v2 && std::find(v2_only.begin(), v2_only.end(), key) != v2_only.end());
    if (!known)
      return plain_error(422,
                         "unknown field: parameter " + std::string(key) + " is not a valid field");
  }
  return std::nullopt;
}

// v2 "inputs": the text parts of each input's content, joined by newlines, make one text.
std::optional<api_error> parse_cohere_inputs(const json::value& inputs, embed_job& job) {
  if (!inputs.is_array())
    return plain_error(422, "invalid request: inputs must be a list");
  for (const json::value& input : inputs.get_array()) {
    const json::value* content = input.is_object() ? field(input.get_object(), "content") : nullptr;
    if (!content || !content->is_array())
      return plain_error(422, "invalid request: every input needs a content list");
    std::string text;
    for (const json::value& part : content->get_array()) {
      const json::object* p = part.if_object();
      const json::value* type = p ? field(*p, "type") : nullptr;
      const json::value* t = p ? field(*p, "text") : nullptr;
      if (!type || !type->is_string() || type->get_string() != "text" || !t || !t->is_string())
        return plain_error(400, "invalid request: the fake provider only supports text content");
      if (!text.empty())
        text += '\n';
      text += t->get_string();
    }
    job.texts.push_back(std::move(text));
  }
  return std::nullopt;
}

std::optional<api_error> parse_cohere_texts(const json::object& o, embed_job& job, bool v2) {
  if (field(o, "images"))
    return plain_error(400, "invalid request: images are not supported by the fake provider");
  if (const json::value* texts = field(o, "texts")) {
    if (!texts->is_array())
      return plain_error(422, "invalid request: texts must be a list");
    for (const json::value& t : texts->get_array()) {
      if (!t.is_string())
        return plain_error(422, "invalid request: texts must be strings");
      job.texts.emplace_back(t.get_string());
    }
    job.echoed_texts = job.texts;
  } else if (const json::value* inputs = v2 ? field(o, "inputs") : nullptr) {
    if (auto err = parse_cohere_inputs(*inputs, job))
      return err;
  }
  if (job.texts.empty())
    return plain_error(400, "invalid request: texts must be a non-empty list of strings");
  if (job.texts.size() > 96)
    return plain_error(400,
                       "invalid request: total number of texts must be at most 96 - received " +
                           std::to_string(job.texts.size()));
  for (std::size_t i = 0; i < job.texts.size(); ++i)
    if (job.texts[i].empty())
      return plain_error(400, "invalid request: inputs contains an element that is the empty "
                              "string at index " +
                                  std::to_string(i));
  return std::nullopt;
}

std::optional<api_error> parse_cohere_embedding_types(const json::object& o, embed_job& job,
                                                      bool v2) {
  static const std::map<std::string_view, encoding> types = {
      {"float", {dtype::float32, false}},   {"int8", {dtype::int8, false}},
      {"uint8", {dtype::uint8, false}},     {"binary", {dtype::binary, false}},
      {"ubinary", {dtype::ubinary, false}}, {"base64", {dtype::float32, true}}};
  const json::value* requested = field(o, "embedding_types");
  if (!requested) {
    if (v2)
      job.cohere_types.emplace_back("float", encoding{});
    return std::nullopt;
  }
  if (!requested->is_array())
    return plain_error(422, "invalid request: embedding_types must be a list");
  for (const json::value& t : requested->get_array()) {
    const auto it = t.is_string() ? types.find(t.get_string()) : types.end();
    if (it == types.end())
      return plain_error(422, "invalid request: embedding_types must be one of float, int8, "
                              "uint8, binary, ubinary, base64");
    job.cohere_types.emplace_back(it->first, it->second);
  }
  if (job.cohere_types.empty())
    return plain_error(400, "invalid request: embedding_types must not be empty");
  return std::nullopt;
}

std::optional<api_error> parse_cohere_dimension(const json::object& o, embed_job& job) {
  job.dims = default_dims(job.model);
  const json::value* d = field(o, "output_dimension");
  if (!d)
    return std::nullopt;
  if (job.model != "embed-v4.0")
    return plain_error(400, "invalid request: output_dimension is only supported by embed-v4.0");
  const auto k = as_integer(*d);
  if (!k || (*k != 256 && *k != 512 && *k != 1024 && *k != 1536))
    return plain_error(400,
                       "invalid request: output_dimension must be one of 256, 512, 1024, 1536");
  job.dims = static_cast<int>(*k);
  return std::nullopt;
}

std::optional<api_error> parse_cohere_truncation(const json::object& o, embed_job& job, bool v2) {
  std::string truncate = "END";
  if (const json::value* t = field(o, "truncate")) {
    if (!t->is_string() ||
        (t->get_string() != "NONE" && t->get_string() != "START" && t->get_string() != "END"))
      return plain_error(422, "invalid request: truncate must be one of NONE, START, END");
    truncate = t->get_string();
  }
  int limit = cohere_context(job.model);
  if (const json::value* m = v2 ? field(o, "max_tokens") : nullptr) {
    const auto k = as_integer(*m);
    if (!k || *k < 1)
      return plain_error(422, "invalid request: max_tokens must be a positive integer");
    limit = static_cast<int>(std::min<std::int64_t>(limit, *k));
  }
  for (std::size_t i = 0; i < job.texts.size(); ++i) {
    const int tokens = fake_token_count(job.texts[i]);
    if (tokens > limit && truncate == "NONE")
      return plain_error(400, "invalid request: input at index " + std::to_string(i) + " has " +
                                  std::to_string(tokens) +
                                  " tokens, which exceeds the maximum of " + std::to_string(limit) +
                                  " tokens; use truncate START or END");
    job.total_tokens += std::min(tokens, limit);
  }
  return std::nullopt;
}

std::optional<api_error> parse_cohere(const json::object& o, embed_job& job, bool v2) {
  if (auto err = check_cohere_fields(o, v2))
    return err;
  const json::value* model = field(o, "model");
  if (!model)
    return plain_error(400, "a model parameter is required for this endpoint.");
  if (!model->is_string())
    return plain_error(422, "invalid request: model must be a string");
  job.model = model->get_string();
  if (!is_cohere_model(job.model))
    return plain_error(404, "model '" + job.model +
                                "' not found, make sure the correct model ID was used and that "
                                "you have access to the model.");
  if (auto err = parse_cohere_texts(o, job, v2))
    return err;

  static const std::vector<std::string_view> input_types = {
      "search_document", "search_query", "classification", "clustering", "image"};
  if (const json::value* t = field(o, "input_type")) {
    if (!t->is_string() ||
        std::find(input_types.begin(), input_types.end(), t->get_string()) == input_types.end())
      return plain_error(422, "invalid request: input_type must be one of search_document, "
                              "search_query, classification, clustering, image");
    job.input_type = t->get_string();
  } else if (v2 || !job.model.ends_with("-v2.0")) {
    return plain_error(
        400, "invalid request: valid input_type must be provided with the provided model");
  }
  if (auto err = parse_cohere_embedding_types(o, job, v2))
    return err;
  if (auto err = v2 ? parse_cohere_dimension(o, job) : std::nullopt)
    return err;
  if (!v2)
    job.dims = default_dims(job.model);
  return parse_cohere_truncation(o, job, v2);
}

// Cohere vectors are positional; "bad_index" rotates them and "missing_index" drops the key.
std::string render_cohere(const embed_job& job, malformed shape, bool v2) {
  const std::size_t n = job.texts.size();
  std::vector<std::vector<float>> vectors;
  vectors.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t source = shape == malformed::bad_index ? (i + 1) % n : i;
    vectors.push_back(fake_vector(job.model, job.input_type, job.texts[source], job.dims));
  }
  if (shape == malformed::wrong_count)
    vectors.pop_back();
  if (shape == malformed::nan && !vectors[0].empty())
    vectors[0][0] = std::numeric_limits<float>::quiet_NaN();

  std::string out;
  out.reserve(256 + n * (static_cast<std::size_t>(job.dims) * 12 + 64));
  out += R"({"id":")" + cohere_id() + R"(","texts":)";
  out += json::serialize(json::value_from(job.echoed_texts));
  if (shape != malformed::missing_index) {
    out += R"(,"embeddings":)";
    auto append_all = [&](encoding enc) {
      out += '[';
      for (std::size_t i = 0; i < vectors.size(); ++i) {
        if (i)
          out += ',';
        append_embedding(out, vectors[i], enc);
      }
      out += ']';
    };
    if (job.cohere_types.empty()) {
      append_all(encoding{});
    } else {
      out += '{';
      for (std::size_t t = 0; t < job.cohere_types.size(); ++t) {
        if (t)
          out += ',';
        out += json::serialize(std::string_view{job.cohere_types[t].first});
        out += ':';
        append_all(job.cohere_types[t].second);
      }
      out += '}';
    }
  }
  out += R"(,"meta":{"api_version":{"version":")";
  out += v2 ? "2" : "1";
  out += R"("},"billed_units":{"input_tokens":)" + std::to_string(job.total_tokens) + "}}";
  out += job.cohere_types.empty() ? R"(,"response_type":"embeddings_floats"})"
                                  : R"(,"response_type":"embeddings_by_type"})";
  return out;
}

constexpr const char* past_request_limit =
    "You are past the per minute request limit, please wait and try again later.";

class cohere_format final : public wire_format {
public:
  explicit cohere_format(bool v2) : v2_(v2) {}

  std::optional<api_error> validate(const json::object& body, embed_job& job) const override {
    return parse_cohere(body, job, v2_);
  }

  std::string render(const embed_job& job, malformed shape) const override {
    return render_cohere(job, shape, v2_);
  }

  std::string error_body(const api_error& e) const override {
    return json::serialize(json::object{{"message", e.message}, {"id", cohere_id()}});
  }

  api_error key_error(const std::string& key) const override {
    return plain_error(401, key.empty() ? "no api key supplied" : "invalid api token");
  }

  api_error json_error(const json::error_code& ec) const override {
    return plain_error(400, "invalid json syntax: " + ec.message());
  }

  api_error injected_error(int status, const std::string&) const override {
    if (status == 429)
      return plain_error(429, past_request_limit);
    if (status == 500)
      return plain_error(500, "internal server error");
    return injected_status_error(status);
  }

  api_error poison_error(std::size_t index, const std::string&) const override {
    return plain_error(400, "invalid request: input at index " + std::to_string(index) +
                                " is too long and could not be embedded");
  }

  api_error rate_limit_error(const rate_limiter::verdict& v, const std::string&) const override {
    if (v.by_tokens)
      return plain_error(429, "token rate limit exceeded, limit is " + std::to_string(v.limit) +
                                  " tokens per minute");
    return plain_error(429, past_request_limit);
  }

  bool positional_rows() const override { return true; }

private:
  bool v2_;
};

} // namespace

const wire_format& cohere_v1_wire() {
  static const cohere_format format(false);
  return format;
}

const wire_format& cohere_v2_wire() {
  static const cohere_format format(true);
  return format;
}

} // namespace emr::fake

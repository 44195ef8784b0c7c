// OpenAI's wire format (providers.md §3, §6.4): POST /v1/embeddings with "input" (texts or token
// ids), answered by the list shape with rate-limit headers, refused with {"error": {...}}.

#include "tools/fake_provider/json_fields.hpp"
#include "tools/fake_provider/list_answer.hpp"
#include "tools/fake_provider/wire_format.hpp"
#include "tools/fake_vectors.hpp"

#include <boost/algorithm/hex.hpp>
#include <boost/uuid/random_generator.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <vector>

namespace emr::fake {

namespace {

namespace json = boost::json;

api_error openai_error(int status, std::string message, std::string type = "invalid_request_error",
                       std::string code = {}, std::string param = {}) {
  return {status, std::move(message), std::move(type), std::move(code), std::move(param)};
}

api_error openai_invalid_input() {
  return openai_error(400, "'$.input' is invalid. Please check the API reference: "
                           "https://platform.openai.com/docs/api-reference.");
}

std::string openai_context_message(int tokens) {
  const std::string n = std::to_string(tokens);
  return "This model's maximum context length is 8192 tokens, however you requested " + n +
         " tokens (" + n +
         " in your prompt; 0 for the completion). Please reduce your prompt; or "
         "completion length.";
}

// Go-style duration strings, as OpenAI's x-ratelimit-reset-* headers use ("12ms", "2.5s", "6m0s");
// by hand, since neither fmt nor Boost writes Go's format (milliseconds, then trimmed seconds).
std::string go_duration(double seconds) {
  if (seconds <= 0)
    return "0s";
  if (seconds < 1)
    return std::to_string(static_cast<long>(std::ceil(seconds * 1000))) + "ms";
  if (seconds < 60) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", seconds);
    std::string s = buf;
    while (s.back() == '0')
      s.pop_back();
    if (s.back() == '.')
      s.pop_back();
    return s + "s";
  }
  const long whole = static_cast<long>(std::ceil(seconds));
  return std::to_string(whole / 60) + "m" + std::to_string(whole % 60) + "s";
}

// "req_" and 32 random hex digits, like OpenAI's x-request-id.
std::string openai_request_id() {
  thread_local boost::uuids::random_generator_mt19937 generate;
  const auto bytes = generate();
  std::string id = "req_";
  boost::algorithm::hex_lower(bytes.begin(), bytes.end(), std::back_inserter(id));
  return id;
}

bool is_openai_model(std::string_view m) {
  return m.starts_with("text-embedding-") && default_dims(m);
}

// A token-id array stands for its ids joined by spaces, so the vector stays deterministic.
std::optional<std::string> token_array_text(const json::array& ids) {
  if (ids.empty())
    return std::nullopt;
  std::string text;
  for (const json::value& id : ids) {
    const auto i = as_integer(id);
    if (!i)
      return std::nullopt;
    if (!text.empty())
      text += ' ';
    text += std::to_string(*i);
  }
  return text;
}

// Returns the token count per input (token arrays count their ids, texts use the fake tokenizer).
std::optional<std::vector<int>> parse_openai_input(const json::value& input, embed_job& job) {
  std::vector<int> tokens;
  if (input.is_string()) {
    if (input.get_string().empty())
      return std::nullopt;
    job.texts.emplace_back(input.get_string());
    tokens.push_back(fake_token_count(job.texts.back()));
    return tokens;
  }
  if (!input.is_array() || input.get_array().empty() || input.get_array().size() > 2048)
    return std::nullopt;
  const json::array& items = input.get_array();
  if (items[0].is_number()) { // one input given as token ids
    auto text = token_array_text(items);
    if (!text)
      return std::nullopt;
    job.texts.push_back(std::move(*text));
    tokens.push_back(static_cast<int>(items.size()));
    return tokens;
  }
  const bool strings = items[0].is_string(); // OpenAI rejects lists mixing texts and token ids
  for (const json::value& item : items) {
    if (item.is_string() != strings)
      return std::nullopt;
    if (item.is_string() && !item.get_string().empty()) {
      job.texts.emplace_back(item.get_string());
      tokens.push_back(fake_token_count(job.texts.back()));
    } else if (item.is_array()) {
      auto text = token_array_text(item.get_array());
      if (!text)
        return std::nullopt;
      job.texts.push_back(std::move(*text));
      tokens.push_back(static_cast<int>(item.get_array().size()));
    } else {
      return std::nullopt;
    }
  }
  return tokens;
}

std::optional<api_error> parse_openai_options(const json::object& o, embed_job& job) {
  if (const json::value* e = field(o, "encoding_format")) {
    if (!e->is_string() || (e->get_string() != "float" && e->get_string() != "base64"))
      return openai_error(
          400,
          "Invalid value for 'encoding_format' = " +
              (e->is_string() ? std::string(e->get_string()) : json::serialize(*e)) +
              ". Supported values: ['float', 'base64'].",
          "invalid_request_error", {}, "encoding_format");
    job.enc.base64 = e->get_string() == "base64";
  }
  const int native = default_dims(job.model);
  job.dims = native;
  if (const json::value* d = field(o, "dimensions")) {
    if (job.model == "text-embedding-ada-002")
      return openai_error(400, "This model does not support specifying dimensions.");
    const auto k = as_integer(*d);
    if (!k || *k < 1)
      return openai_error(
          400, "Invalid value for 'dimensions' = " + json::serialize(*d) + ". Must be at least 1.",
          "invalid_request_error", {}, "dimensions");
    if (*k > native)
      return openai_error(400,
                          "This model's maximum dimensions is " + std::to_string(native) +
                              ", however you requested " + std::to_string(*k) + ".",
                          "invalid_request_error", {}, "dimensions");
    job.dims = static_cast<int>(*k);
  }
  return std::nullopt;
}

std::optional<api_error> parse_openai(const json::object& o, embed_job& job) {
  static const std::vector<std::string_view> known = {"input", "model", "encoding_format",
                                                      "dimensions", "user"};
  for (const auto& [key, value] : o)
    if (std::find(known.begin(), known.end(), key) == known.end())
      return openai_error(400, "Unrecognized request argument supplied: " + std::string(key));
  const json::value* model = field(o, "model");
  if (!model || !model->is_string())
    return openai_error(400, "you must provide a model parameter");
  job.model = model->get_string();
  if (!is_openai_model(job.model))
    return openai_error(
        404, "The model `" + job.model + "` does not exist or you do not have access to it.",
        "invalid_request_error", "model_not_found");
  const json::value* input = field(o, "input");
  if (!input)
    return openai_error(400, "'input' is a required property");
  const auto tokens = parse_openai_input(*input, job);
  if (!tokens)
    return openai_invalid_input();
  if (auto err = parse_openai_options(o, job))
    return err;
  for (int t : *tokens) {
    if (t > 8192)
      return openai_error(400, openai_context_message(t));
    job.total_tokens += t;
  }
  if (job.total_tokens > 300000)
    return openai_error(400,
                        "Requested " + std::to_string(job.total_tokens) +
                            " tokens, max 300000 tokens per request",
                        "max_tokens_per_request", "max_tokens_per_request");
  return std::nullopt;
}

class openai_format final : public wire_format {
public:
  std::optional<api_error> validate(const json::object& body, embed_job& job) const override {
    return parse_openai(body, job);
  }

  std::string render(const embed_job& job, malformed shape) const override {
    return render_list(job, shape, {.index_before_embedding = true, .prompt_tokens = true});
  }

  std::string error_body(const api_error& e) const override {
    auto nullable = [](const std::string& s) { return s.empty() ? json::value() : json::value(s); };
    return json::serialize(json::object{{"error", json::object{{"message", e.message},
                                                               {"type", e.type},
                                                               {"param", nullable(e.param)},
                                                               {"code", nullable(e.code)}}}});
  }

  api_error key_error(const std::string& key) const override {
    if (key.empty())
      return openai_error(
          401,
          "You didn't provide an API key. You need to provide your API key in an "
          "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as "
          "the password field (with blank username) if you're accessing the API from your "
          "browser and are prompted for a username and password. You can obtain an API key "
          "from https://platform.openai.com/account/api-keys.");
    return openai_error(
        401,
        "Incorrect API key provided: " + key.substr(0, std::min<std::size_t>(3, key.size())) +
            "****" + (key.size() > 7 ? key.substr(key.size() - 4) : "") +
            ". You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error", "invalid_api_key");
  }

  api_error json_error(const json::error_code&) const override {
    return openai_error(400, "We could not parse the JSON body of your request. (HINT: This likely "
                             "means you aren't using your HTTP library correctly. The OpenAI API "
                             "expects a JSON payload, but what was sent was not valid JSON.)");
  }

  api_error injected_error(int status, const std::string& model) const override {
    if (status == 429)
      return openai_error(429,
                          "Rate limit reached for " + model +
                              " in organization org-fake on "
                              "requests per min (RPM): Limit 1, Used 1, Requested 1. Please try "
                              "again in 1s. Visit https://platform.openai.com/account/rate-limits "
                              "to learn more.",
                          "requests", "rate_limit_exceeded");
    if (status == 500)
      return openai_error(500,
                          "The server had an error processing your request. Sorry about "
                          "that! You can retry your request, or contact us through our help "
                          "center at help.openai.com if you keep seeing this error.",
                          "server_error");
    return injected_status_error(status);
  }

  api_error poison_error(std::size_t index, const std::string&) const override {
    return openai_error(400, "Input at index " + std::to_string(index) + " is invalid. " +
                                 openai_context_message(8193));
  }

  api_error rate_limit_error(const rate_limiter::verdict& v,
                             const std::string& model) const override {
    const std::string per = v.by_tokens ? "tokens per min (TPM)" : "requests per min (RPM)";
    return openai_error(
        429,
        "Rate limit reached for " + model + " in organization org-fake on " + per + ": Limit " +
            std::to_string(v.limit) + ", Used " + std::to_string(v.used) + ", Requested " +
            std::to_string(v.requested) + ". Please try again in " + go_duration(v.wait_s) +
            ". Visit https://platform.openai.com/account/rate-limits to learn more.",
        v.by_tokens ? "tokens" : "requests", "rate_limit_exceeded");
  }

  void add_answer_headers(httplib::Headers& headers, rate_limiter& limiter,
                          const std::string& window_key,
                          std::chrono::steady_clock::time_point started) const override {
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    headers.emplace("x-request-id", openai_request_id());
    headers.emplace("openai-processing-ms", std::to_string(elapsed.count()));
    headers.emplace("openai-version", "2020-10-01");
    // An unlimited fake states no limit: a router that believes the headers (emr does) would
    // pace itself to a limit the fake does not enforce, and the bench would measure that.
    if (!limiter.enabled())
      return;
    const rate_limiter::usage u = limiter.peek(window_key);
    // A measure the fake does not limit is stated as very large, as OpenAI states every limit.
    const long rpm = limiter.rpm() > 0 ? limiter.rpm() : 10'000'000;
    const long tpm = limiter.tpm() > 0 ? limiter.tpm() : 10'000'000'000;
    headers.emplace("x-ratelimit-limit-requests", std::to_string(rpm));
    headers.emplace("x-ratelimit-limit-tokens", std::to_string(tpm));
    headers.emplace("x-ratelimit-remaining-requests",
                    std::to_string(std::max(0L, rpm - u.requests)));
    headers.emplace("x-ratelimit-remaining-tokens", std::to_string(std::max(0L, tpm - u.tokens)));
    headers.emplace("x-ratelimit-reset-requests", go_duration(u.reset_requests_s));
    headers.emplace("x-ratelimit-reset-tokens", go_duration(u.reset_tokens_s));
  }
};

} // namespace

const wire_format& openai_wire() {
  static const openai_format format;
  return format;
}

} // namespace emr::fake

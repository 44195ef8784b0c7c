#include "http/embed_request.hpp"

#include "http/answer_bodies.hpp"

#include "providers/float_codec.hpp"

#include <boost/algorithm/string/predicate.hpp>
#include <boost/algorithm/string/split.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <set>

namespace json = boost::json;

namespace emr {

namespace {

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  });
}

std::optional<api_error> check_text(std::string_view text, std::size_t index,
                                    const request_limits& limits) {
  auto where = "input[" + std::to_string(index) + "]";
  if (blank(text))
    return invalid_request(where + " is empty or only whitespace", "input");
  if (text.size() > limits.max_text_bytes)
    return invalid_request(where + " is " + std::to_string(text.size()) +
                               " bytes, over the limit of " + std::to_string(limits.max_text_bytes),
                           "input");
  if (text.find('\0') != std::string_view::npos)
    return invalid_request(where + " contains a NUL character", "input");
  return std::nullopt;
}

std::optional<api_error> parse_input(const json::value& input, const request_limits& limits,
                                     std::vector<std::string>& texts) {
  if (auto s = input.if_string()) {
    if (auto e = check_text(*s, 0, limits))
      return e;
    texts.emplace_back(s->data(), s->size());
    return std::nullopt;
  }
  auto arr = input.if_array();
  if (!arr)
    return invalid_request("'input' must be a string or an array of strings", "input");
  if (arr->empty())
    return invalid_request("'input' must not be empty", "input");
  if (arr->size() > limits.max_texts)
    return invalid_request("'input' holds " + std::to_string(arr->size()) +
                               " texts, over the limit of " + std::to_string(limits.max_texts),
                           "input");
  texts.reserve(arr->size());
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const auto& item = (*arr)[i];
    auto s = item.if_string();
    if (!s) {
      if (item.is_int64() || item.is_uint64() || item.is_array())
        return invalid_request("'input' holds token ids; emr embeds text only, so send strings",
                               "input");
      return invalid_request("input[" + std::to_string(i) + "] must be a string", "input");
    }
    if (auto e = check_text(*s, i, limits))
      return e;
    texts.emplace_back(s->data(), s->size());
  }
  return std::nullopt;
}

bool is_integer(const json::value& v) {
  return v.is_int64() || v.is_uint64();
}

// The caller's input role in emr's own terms; Cohere's names for the retrieval roles are aliases.
std::optional<std::string> input_role(std::string_view input_type) {
  if (input_type == "query" || input_type == "search_query")
    return "query";
  if (input_type == "document" || input_type == "search_document")
    return "document";
  if (input_type == "classification" || input_type == "clustering")
    return std::string{input_type};
  return std::nullopt;
}

// What surrounds each vector: {"object":"embedding","index":N,"embedding":...} and a comma.
constexpr std::size_t row_overhead = 64;

std::optional<std::string> optional_string(const json::object& o, std::string_view key,
                                           std::optional<api_error>& error) {
  auto v = o.if_contains(key);
  if (!v || v->is_null())
    return std::nullopt;
  if (auto s = v->if_string())
    return std::string{s->data(), s->size()};
  error = invalid_request("'" + std::string{key} + "' must be a string", std::string{key});
  return std::nullopt;
}

} // namespace

std::variant<json::value, api_error> parse_json_body(std::string_view body) {
  json::error_code ec;
  json::parse_options opts;
  opts.max_depth = 32;
  auto v = json::parse(body, ec, {}, opts);
  if (ec)
    return invalid_request("request body is not valid JSON: " + ec.message());
  if (!v.is_object())
    return invalid_request("request body must be a JSON object");
  return v;
}

std::variant<embed_request, api_error> parse_embed_request(const json::value& body,
                                                           const request_limits& limits) {
  auto o = body.if_object();
  if (!o)
    return invalid_request("request must be a JSON object");
  embed_request r;
  auto input = o->if_contains("input");
  if (!input || input->is_null())
    return invalid_request("'input' is required", "input");
  if (auto e = parse_input(*input, limits, r.texts))
    return *e;

  std::optional<api_error> error;
  r.provider = optional_string(*o, "provider", error);
  r.model = optional_string(*o, "model", error);
  auto policy = optional_string(*o, "policy", error);
  auto input_type = optional_string(*o, "input_type", error);
  auto encoding = optional_string(*o, "encoding_format", error);
  // Type-checked only: `user` is never stored, logged or sent on.
  optional_string(*o, "user", error);
  if (auto id = o->if_contains("id"); id && !id->is_null() && !id->is_string() && !is_integer(*id))
    error = invalid_request("'id' must be a string or an integer", "id");
  if (error)
    return *error;

  if (auto list = o->if_contains("providers"); list && !list->is_null()) {
    auto arr = list->if_array();
    if (!arr)
      return invalid_request("'providers' must be an array of provider names", "providers");
    if (arr->empty())
      return invalid_request("'providers' must not be empty", "providers");
    std::set<std::string, std::less<>> seen;
    for (const auto& p : *arr) {
      auto s = p.if_string();
      if (!s || s->empty())
        return invalid_request("'providers' must hold provider names", "providers");
      std::string name{s->data(), s->size()};
      if (!seen.insert(name).second)
        return invalid_request("provider '" + name + "' appears twice in 'providers'", "providers");
      r.providers.push_back(std::move(name));
    }
  }
  if (r.provider && !r.providers.empty())
    return invalid_request("give either 'provider' or 'providers', not both", "provider");
  if (r.provider && r.provider->empty())
    return invalid_request("'provider' must not be empty", "provider");
  if (!r.provider && r.providers.empty() && !r.model)
    return invalid_request("name a 'provider', a 'providers' list or a 'model'", "provider");

  if (policy) {
    if (*policy == "any")
      r.policy = routing_policy::any;
    else if (*policy == "all")
      r.policy = routing_policy::all;
    else
      return invalid_request("'policy' must be \"any\" or \"all\"", "policy");
  }
  if (input_type) {
    auto role = input_role(*input_type);
    if (!role)
      return invalid_request(
          "'input_type' must be \"query\", \"document\", \"search_query\", \"search_document\", "
          "\"classification\", \"clustering\" or null",
          "input_type");
    r.input_type = std::move(*role);
  }
  if (encoding) {
    if (*encoding == "base64")
      r.encoding = vector_encoding::base64;
    else if (*encoding != "float")
      return invalid_request("'encoding_format' must be \"float\" or \"base64\"",
                             "encoding_format");
  }
  if (auto cache = o->if_contains("cache"); cache && !cache->is_null()) {
    if (!cache->is_bool())
      return invalid_request("'cache' must be true or false", "cache");
    r.cache.read = r.cache.write = cache->get_bool();
  }
  if (auto d = o->if_contains("dimensions"); d && !d->is_null()) {
    if (!d->is_int64() || d->get_int64() <= 0 || d->get_int64() > 65536)
      return invalid_request("'dimensions' must be a positive integer", "dimensions");
    r.dimensions = static_cast<int>(d->get_int64());
  }
  return r;
}

cache_use cache_control_use(std::string_view cache_control) {
  cache_use use;
  std::vector<std::string_view> directives;
  boost::algorithm::split(directives, cache_control, [](char c) { return c == ','; });
  for (auto d : directives) {
    auto directive = boost::algorithm::trim_copy(d);
    if (boost::algorithm::iequals(directive, "no-store"))
      use.read = use.write = false;
    else if (boost::algorithm::iequals(directive, "no-cache"))
      use.read = false;
  }
  return use;
}

std::variant<batch_id, api_error> parse_batch_id(const json::value& request, std::size_t index) {
  auto o = request.if_object();
  auto id = o ? o->if_contains("id") : nullptr;
  if (id && id->is_string() && !id->get_string().empty())
    return batch_id{*id, std::string{id->get_string()}};
  if (id && is_integer(*id))
    return batch_id{*id, json::serialize(*id)};
  return invalid_request("requests[" + std::to_string(index) +
                             "] needs an 'id': a non-empty string or an integer",
                         "requests");
}

std::size_t count_texts(const json::value& request) {
  auto o = request.if_object();
  auto input = o ? o->if_contains("input") : nullptr;
  if (input && input->is_string())
    return 1;
  if (auto list = input ? input->if_array() : nullptr)
    return list->size();
  return 0;
}

std::size_t vector_bytes(std::size_t rows, std::size_t dims, vector_encoding encoding) {
  auto values =
      encoding == vector_encoding::base64 ? (dims * sizeof(float) + 2) / 3 * 4 : dims * 16;
  return rows * (values + 2 + row_overhead);
}

std::size_t vector_bytes(const caller_outcome& outcome, vector_encoding encoding) {
  std::size_t bytes = 0;
  for (const auto& a : outcome.answers)
    for (const auto& c : a.chunks)
      bytes += vector_bytes(c.rows.size(), c.matrix ? c.matrix->dims : 0, encoding);
  return bytes;
}

void append_embedding_response(std::string& out, const provider_answer& answer,
                               vector_encoding encoding) {
  out += R"({"object":"list","data":[)";
  std::size_t index = 0;
  answer.for_each_vector([&](const float* row, std::size_t dims) {
    if (index != 0)
      out.push_back(',');
    out += R"({"object":"embedding","index":)";
    out += std::to_string(index++);
    out += R"(,"embedding":)";
    if (encoding == vector_encoding::base64) {
      out.push_back('"');
      append_base64_floats(out, row, dims);
      out.push_back('"');
    } else {
      append_json_floats(out, row, dims);
    }
    out.push_back('}');
  });
  out += R"(],"model":)";
  out += json::serialize(json::string{answer.model});
  out += R"(,"provider":)";
  out += json::serialize(json::string{answer.provider});
  auto tokens = std::to_string(answer.tokens);
  out += R"(,"usage":{"prompt_tokens":)" + tokens + R"(,"total_tokens":)" + tokens + "}}";
}

api_error from_failure(const failure& f) {
  return api_error{f.status, f.type, f.message, {}, f.type, f.retry_after_ms};
}

std::string render_outcome(const caller_outcome& outcome, routing_policy policy,
                           vector_encoding encoding) {
  // Room for the most the vectors can take avoids regrowth on big answers; the pages the answer
  // leaves untouched cost no memory.
  auto out = answer_bodies().take(256 + vector_bytes(outcome, encoding));
  if (policy == routing_policy::all) {
    out += R"({"object":"map","results":{)";
    for (std::size_t i = 0; i < outcome.answers.size(); ++i) {
      if (i != 0)
        out.push_back(',');
      out += json::serialize(json::string{outcome.answers[i].provider});
      out.push_back(':');
      append_embedding_response(out, outcome.answers[i], encoding);
    }
    out += "}}";
  } else {
    append_embedding_response(out, outcome.answers.front(), encoding);
  }
  return out;
}

} // namespace emr

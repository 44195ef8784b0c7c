// Exact vector verification; see answer_check.hpp.

#include "tools/load_client/answer_check.hpp"

#include "providers/float_codec.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <string_view>

namespace emr::load {

namespace {

namespace json = boost::json;

constexpr std::size_t body_excerpt_chars = 300;

// An embedding as float32, from either wire encoding; false if it is neither.
bool read_embedding(const json::value& v, std::vector<float>& out) {
  out.clear();
  if (const auto* s = v.if_string())
    return decode_base64_floats(std::string_view{s->data(), s->size()}, out);
  const auto* a = v.if_array();
  if (!a)
    return false;
  out.reserve(a->size());
  for (const auto& x : *a) {
    if (!x.is_number())
      return false;
    out.push_back(static_cast<float>(x.to_number<double>()));
  }
  return true;
}

// Empty when `list`, one provider's list answer, holds exactly the expected vectors.
std::string check_list(const caller& c, const json::object& list, const expectation* expect) {
  const auto* data_value = list.if_contains("data");
  const auto* data = data_value ? data_value->if_array() : nullptr;
  if (!data)
    return "200 without a data array: " + excerpt(json::serialize(list));
  if (data->size() != c.texts.size())
    return "200 with " + std::to_string(data->size()) + " embeddings for " +
           std::to_string(c.texts.size()) + " texts";

  int dims = 0;
  std::string upstream_type;
  if (expect) {
    dims = expect->dims > 0 ? expect->dims : fake::default_dims(expect->model);
    if (dims <= 0)
      return "cannot verify: no dimensions known for model " + expect->model;
    upstream_type = expect->upstream_input_type(c.input_type);
  }
  std::vector<float> got;
  for (std::size_t i = 0; i < data->size(); ++i) {
    const std::string where = "data[" + std::to_string(i) + "]";
    const auto* item = (*data)[i].if_object();
    const auto* index = item ? item->if_contains("index") : nullptr;
    if (!index || !index->is_number() || index->to_number<double>() != static_cast<double>(i))
      return where + " has no index " + std::to_string(i);
    const auto* embedding = item->if_contains("embedding");
    if (!embedding || !read_embedding(*embedding, got) || got.empty())
      return where + " has no float32 embedding";
    if (!expect)
      continue;
    const auto want = fake::fake_vector(expect->model, upstream_type, c.texts[i], dims);
    if (got.size() != want.size())
      return where + " has " + std::to_string(got.size()) + " dimensions, expected " +
             std::to_string(want.size());
    const auto [g, w] = std::mismatch(got.begin(), got.end(), want.begin());
    if (g != got.end())
      return where + " (\"" + c.texts[i] + "\") differs at component " +
             std::to_string(g - got.begin()) + ": got " + std::to_string(*g) + ", expected " +
             std::to_string(*w) + " (model " + expect->model + ", input_type \"" + upstream_type +
             "\")";
  }
  return {};
}

std::string string_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// The expectation for an answer `provider` gave: the caller's own, or under several providers
// the one naming it; null (with `error` set) for a provider the caller did not ask for.
const expectation* expectation_for(const std::optional<expectation>& expect,
                                   const std::string& provider, std::string& error) {
  if (!expect)
    return nullptr;
  if (expect->providers.empty()) {
    if (expect->provider.empty() || expect->provider == provider)
      return &*expect;
  } else {
    for (const auto& e : expect->providers)
      if (e.provider == provider)
        return &e;
  }
  error = "answered by provider \"" + provider + "\", which the caller did not ask for";
  return nullptr;
}

// Empty when a 200 /v1/embeddings answer (a list, or a map under policy "all") holds exactly
// the expected vectors. Also takes a list answer's "provider" field.
std::string check_response(const caller& c, const json::object& answer,
                           const std::optional<expectation>& expect, std::string& provider) {
  if (string_field(answer, "object") != "map") {
    provider = string_field(answer, "provider");
    std::string error;
    const expectation* e = expectation_for(expect, provider, error);
    return error.empty() ? check_list(c, answer, e) : error;
  }
  const auto* results_value = answer.if_contains("results");
  const auto* results = results_value ? results_value->if_object() : nullptr;
  if (!results)
    return "200 map without a results object: " + excerpt(json::serialize(answer));
  if (expect && results->size() != std::max<std::size_t>(expect->providers.size(), 1))
    return "200 map with " + std::to_string(results->size()) + " providers' answers";
  for (const auto& [name, list] : *results) {
    const auto* o = list.if_object();
    if (!o || string_field(*o, "provider") != name)
      return "results[\"" + std::string(name) + "\"] is not that provider's answer";
    std::string error;
    const expectation* e = expectation_for(expect, std::string(name), error);
    if (error.empty())
      error = check_list(c, *o, e);
    if (!error.empty())
      return "results[\"" + std::string(name) + "\"]: " + error;
  }
  return {};
}

// Empty when a 200 batch answer has one result per sub-request, in order, and every result
// answered 200 holds exactly its vectors; records each sub-request's status.
std::string check_batch(const caller& c, const json::object& answer,
                        const std::optional<expectation>& expect, result& r) {
  const auto* results_value = answer.if_contains("results");
  const auto* results = results_value ? results_value->if_array() : nullptr;
  if (!results || results->size() != c.batch.size())
    return "200 batch without one result per sub-request: " + excerpt(json::serialize(answer));
  for (std::size_t i = 0; i < results->size(); ++i) {
    const std::string where = "results[" + std::to_string(i) + "]";
    const auto* item = (*results)[i].if_object();
    const auto* status = item ? item->if_contains("status") : nullptr;
    if (!status || !status->is_int64() || string_field(*item, "id") != std::to_string(i))
      return where + " has no status or not the id \"" + std::to_string(i) + "\"";
    r.batch_statuses.push_back(static_cast<int>(status->get_int64()));
    if (r.batch_statuses.back() != 200)
      continue;
    const auto* response = item->if_contains("response");
    std::string provider;
    std::string error = response && response->is_object()
                            ? check_response(c.batch[i], response->get_object(), expect, provider)
                            : "200 without a response";
    if (!error.empty())
      return where + ": " + error;
  }
  return {};
}

} // namespace

std::string excerpt(const std::string& body) {
  return body.size() <= body_excerpt_chars ? body : body.substr(0, body_excerpt_chars) + "...";
}

std::string check_answer(const caller& c, const std::string& body,
                         const std::optional<expectation>& expect, result& r) {
  json::error_code ec;
  const json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object())
    return "200 with a body that is not a JSON object: " + excerpt(body);
  return c.batch.empty() ? check_response(c, doc.get_object(), expect, r.provider)
                         : check_batch(c, doc.get_object(), expect, r);
}

} // namespace emr::load

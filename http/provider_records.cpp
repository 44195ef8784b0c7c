#include "http/provider_records.hpp"

#include "http/exchange.hpp"
#include "providers/endpoint.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <limits>

namespace json = boost::json;

namespace emr {

namespace {

bool valid_env_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || std::isdigit(static_cast<unsigned char>(name.front())))
    return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
      return false;
  return true;
}

// What emr itself reads from its environment as secrets (cli/serve.cpp, cli/admin_client.cpp):
// a provider naming one would send it, as its key, to whatever endpoint the provider names.
bool emr_secret(std::string_view name) {
  return name == "EMR_ADMIN_SECRET" || name == "EMR_DATABASE_URL";
}

} // namespace

std::optional<api_error> check_provider(const provider_record& r) {
  if (!valid_name(r.name))
    return invalid_name("name");
  if (r.name.find('/') != std::string::npos)
    return invalid_request("'name' must not contain '/' (it separates provider and model)", "name");
  auto type = parse_provider_type(r.type);
  if (!type)
    return invalid_request("'type' must be one of voyage, cohere, openai, openai-compatible",
                           "type");
  if (auto parsed = parse_endpoint(r.endpoint); !parsed.endpoint)
    return invalid_request("'endpoint' " + parsed.problem, "endpoint");
  if (r.model.empty())
    return invalid_request("'model' is required", "model");
  if (!valid_name(r.model))
    return invalid_name("model");
  if (!valid_env_name(r.api_key_env))
    return invalid_request("'api_key_env' must be an environment variable name", "api_key_env");
  if (emr_secret(r.api_key_env))
    return invalid_request("'api_key_env' must not name one of emr's own secrets", "api_key_env");
  if (r.max_batch < 0)
    return invalid_request("'max_batch' must be at least 1", "max_batch");
  if (auto e =
          check_rate_limit("requests_per_minute", r.requests_per_minute, most_requests_per_minute))
    return e;
  if (auto e = check_rate_limit("tokens_per_minute", r.tokens_per_minute, most_tokens_per_minute))
    return e;
  auto spec = to_spec(r);
  auto limit = make_provider(spec)->limits(r.model).max_texts;
  if (*type != provider_type::openai_compatible && static_cast<std::size_t>(r.max_batch) > limit)
    return invalid_request(
        "'max_batch' must be at most " + std::to_string(limit) + " for " + r.type, "max_batch");
  return std::nullopt;
}

namespace {

std::optional<api_error> read_string(const json::object& body, std::string_view key,
                                     std::string& out) {
  auto v = body.if_contains(key);
  if (!v)
    return std::nullopt;
  auto s = v->if_string();
  if (!s)
    return invalid_request("'" + std::string{key} + "' must be a string", std::string{key});
  out.assign(s->data(), s->size());
  return std::nullopt;
}

std::optional<api_error> read_max_batch(const json::object& body, int& out) {
  auto v = body.if_contains("max_batch");
  if (!v || v->is_null())
    return std::nullopt;
  if (!v->is_int64() || v->get_int64() < 1 || v->get_int64() > 1'000'000)
    return invalid_request("'max_batch' must be a positive integer", "max_batch");
  out = static_cast<int>(v->get_int64());
  return std::nullopt;
}

// 0 is a value, not an absence: it clears a limit set before. The range is check_provider's.
std::optional<api_error> read_rate_limits(const json::object& body, provider_record& r) {
  if (auto e = read_rate_limit(body, "requests_per_minute", r.requests_per_minute))
    return e;
  return read_rate_limit(body, "tokens_per_minute", r.tokens_per_minute);
}

std::optional<api_error> read_enabled(const json::object& body, bool& out) {
  auto v = body.if_contains("enabled");
  if (!v)
    return std::nullopt;
  if (!v->is_bool())
    return invalid_request("'enabled' must be true or false", "enabled");
  out = v->get_bool();
  return std::nullopt;
}

// Whether a PATCH only sets `enabled` to false and rate limits to 0 (or null, which keeps them).
bool only_disables_or_clears(const json::object& body) {
  return std::all_of(body.begin(), body.end(), [](const json::key_value_pair& field) {
    const auto& v = field.value();
    if (field.key() == "enabled")
      return v.is_bool() && !v.get_bool();
    if (field.key() == "requests_per_minute" || field.key() == "tokens_per_minute")
      return v.is_null() || (v.is_int64() && v.get_int64() == 0);
    return false;
  });
}

} // namespace

provider_spec to_spec(const provider_record& r) {
  return provider_spec{r.name,
                       parse_provider_type(r.type).value_or(provider_type::voyage),
                       r.endpoint,
                       r.model,
                       r.api_key_env,
                       static_cast<std::size_t>(std::max(0, r.max_batch)),
                       r.enabled,
                       static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.requests_per_minute)),
                       static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.tokens_per_minute))};
}

std::variant<provider_record, api_error> provider_from_json(const json::object& body) {
  if (auto e = check_fields(body, {"name", "type", "endpoint", "model", "api_key_env", "max_batch",
                                   "enabled", "requests_per_minute", "tokens_per_minute"}))
    return *e;
  provider_record r;
  for (auto [key, field] :
       {std::pair{"name", &r.name}, std::pair{"type", &r.type}, std::pair{"endpoint", &r.endpoint},
        std::pair{"model", &r.model}, std::pair{"api_key_env", &r.api_key_env}})
    if (auto e = read_string(body, key, *field))
      return *e;
  if (auto e = read_max_batch(body, r.max_batch))
    return *e;
  if (auto e = read_enabled(body, r.enabled))
    return *e;
  if (auto e = read_rate_limits(body, r))
    return *e;
  if (auto e = check_provider(r))
    return *e;
  return r;
}

std::optional<api_error> patch_provider(provider_record& r, const json::object& body) {
  // The name is the record's identity, and the type gives the endpoint, model and max_batch
  // their meaning: another of either is another provider, to add.
  if (auto e = check_patch_fields(body,
                                  {"endpoint", "model", "api_key_env", "max_batch", "enabled",
                                   "requests_per_minute", "tokens_per_minute"},
                                  {"name", "type"}))
    return e;
  for (auto [key, field] : {std::pair{"endpoint", &r.endpoint}, std::pair{"model", &r.model},
                            std::pair{"api_key_env", &r.api_key_env}})
    if (auto e = read_string(body, key, *field))
      return e;
  if (auto e = read_max_batch(body, r.max_batch))
    return e;
  if (auto e = read_enabled(body, r.enabled))
    return e;
  if (auto e = read_rate_limits(body, r))
    return e;
  // A stored record that cannot run (written by hand or by an older emr, perhaps with a type no
  // PATCH can change) may still be disabled, or have a limit cleared: neither makes it run, and
  // refusing them would leave nothing but its removal.
  if (only_disables_or_clears(body))
    return std::nullopt;
  return check_provider(r);
}

json::object provider_json(const provider_record& r) {
  auto key = std::getenv(r.api_key_env.c_str());
  auto problem = check_provider(r);
  return json::object{{"name", r.name},
                      {"type", r.type},
                      {"endpoint", redact_endpoint(r.endpoint)},
                      {"model", r.model},
                      {"api_key_env", r.api_key_env},
                      {"api_key_set", key != nullptr && *key != '\0'},
                      {"max_batch", r.max_batch},
                      {"enabled", r.enabled},
                      {"requests_per_minute", r.requests_per_minute},
                      {"tokens_per_minute", r.tokens_per_minute},
                      {"created_at", r.created_at},
                      {"problem", problem ? json::value(problem->message) : json::value()}};
}

} // namespace emr

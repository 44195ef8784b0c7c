#include "http/rate_limit_fields.hpp"

#include <boost/json.hpp>

#include <limits>

namespace json = boost::json;

namespace emr {

std::optional<api_error> read_rate_limit(const json::object& body, std::string_view key,
                                         std::int64_t& out) {
  auto v = body.if_contains(key);
  if (!v || v->is_null())
    return std::nullopt;
  // Boost.JSON reads an integer past int64 as uint64, or past uint64 as a double: either is
  // past any limit, and the range's message says so better than "not an integer".
  constexpr double int64_range = 9.223372036854775807e18;
  if (v->is_int64())
    out = v->get_int64();
  else if (v->is_uint64() || (v->is_double() && v->get_double() >= int64_range))
    out = std::numeric_limits<std::int64_t>::max();
  else if (v->is_double() && v->get_double() <= -int64_range)
    out = std::numeric_limits<std::int64_t>::min();
  else
    return invalid_request("'" + std::string{key} + "' must be an integer (0: not set)",
                           std::string{key});
  return std::nullopt;
}

std::optional<api_error> check_rate_limit(std::string_view key, std::int64_t value,
                                          std::int64_t most) {
  if (value < 0)
    return invalid_request("'" + std::string{key} + "' must not be negative (0: not set)",
                           std::string{key});
  if (value > most)
    return invalid_request("'" + std::string{key} + "' must be at most " + std::to_string(most),
                           std::string{key});
  return std::nullopt;
}

std::optional<api_error> read_key_limits(const json::object& body, key_limits& limits) {
  struct field {
    std::string_view key;
    std::int64_t& value;
    std::int64_t most;
  };
  for (auto [key, value, most] :
       {field{"requests_per_minute", limits.requests_per_minute, most_requests_per_minute},
        field{"tokens_per_minute", limits.tokens_per_minute, most_tokens_per_minute},
        field{"tokens_per_day", limits.tokens_per_day, most_tokens_per_day}}) {
    if (auto v = body.if_contains(key); v && v->is_null())
      value = 0;
    if (auto e = read_rate_limit(body, key, value))
      return e;
    if (auto e = check_rate_limit(key, value, most))
      return e;
  }
  return std::nullopt;
}

} // namespace emr

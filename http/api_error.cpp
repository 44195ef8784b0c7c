#include "http/api_error.hpp"

#include <boost/json.hpp>

namespace json = boost::json;

namespace emr {

std::string render_error(const api_error& error) {
  json::object body{{"message", error.message}, {"type", error.type}};
  body["param"] = error.param.empty() ? json::value(nullptr) : json::value(error.param);
  body["code"] = error.code.empty() ? json::value(nullptr) : json::value(error.code);
  return json::serialize(json::object{{"error", std::move(body)}});
}

api_error from_failure(const failure& f) {
  return api_error{f.status, f.type, f.message, {}, f.type, f.retry_after_ms};
}

std::string retry_after_seconds(std::int64_t ms) {
  return std::to_string(std::max<std::int64_t>(1, (ms + 999) / 1000));
}

} // namespace emr

#include "http/api_error.hpp"

#include "http/code_points.hpp"

#include <boost/json.hpp>

namespace json = boost::json;

namespace emr {

namespace {

// Messages quote what callers sent (a path segment, a method), which need not be UTF-8; JSON must
// be, so each byte that starts no valid sequence becomes U+FFFD.
std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    auto c = first_code_point(s);
    auto bytes = c ? c->bytes : 1;
    if (c)
      out.append(s.substr(0, bytes));
    else
      out += "\xef\xbf\xbd";
    s.remove_prefix(bytes);
  }
  return out;
}

} // namespace

std::string render_error(const api_error& error) {
  json::object body{{"message", valid_utf8(error.message)}, {"type", error.type}};
  body["param"] = error.param.empty() ? json::value(nullptr) : json::value(error.param);
  body["code"] = error.code.empty() ? json::value(nullptr) : json::value(error.code);
  return json::serialize(json::object{{"error", std::move(body)}});
}

api_error invalid_request(std::string message, std::string param) {
  return api_error{400, "invalid_request", std::move(message), std::move(param), {}, -1};
}

std::optional<std::int64_t> retry_after(const api_error& error) {
  if (error.retry_after_ms < 0 || (error.status != 429 && error.status != 503))
    return std::nullopt;
  return std::max<std::int64_t>(1, (error.retry_after_ms + 999) / 1000);
}

const char* reason_phrase(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 413:
    return "Payload Too Large";
  case 415:
    return "Unsupported Media Type";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
  }
}

} // namespace emr

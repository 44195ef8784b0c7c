#include "http/api_error.hpp"

#include <boost/json.hpp>

namespace json = boost::json;

namespace emr {

namespace {

// How many bytes a UTF-8 sequence starting with `lead` has; 0 when `lead` starts none.
std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80)
    return 1;
  if ((lead >> 5) == 0x6)
    return 2;
  if ((lead >> 4) == 0xe)
    return 3;
  if ((lead >> 3) == 0x1e)
    return 4;
  return 0;
}

// Messages quote what callers sent (a path segment, a method), which need not be UTF-8; JSON must
// be, so each byte that starts no valid sequence becomes U+FFFD.
std::string valid_utf8(std::string_view s) {
  static constexpr std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000}; // overlong below
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    auto lead = static_cast<unsigned char>(s[i]);
    auto length = sequence_length(lead);
    bool valid = length > 0 && i + length <= s.size();
    std::uint32_t code_point = lead & (0xff >> (length + 1));
    for (std::size_t k = 1; valid && k < length; ++k) {
      auto next = static_cast<unsigned char>(s[i + k]);
      valid = (next & 0xc0) == 0x80;
      code_point = (code_point << 6) | (next & 0x3f);
    }
    valid = valid && (length == 1 || (code_point >= smallest[length] && code_point <= 0x10ffff &&
                                      (code_point < 0xd800 || code_point > 0xdfff)));
    if (valid) {
      out.append(s.substr(i, length));
      i += length;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
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

#include "http/exchange.hpp"


#include <algorithm>
#include <random>

namespace emr {

void send_error(httplib::Response& res, const api_error& error) {
  if (error.retry_after_ms >= 0 && (error.status == 429 || error.status == 503))
    res.set_header("Retry-After", retry_after_seconds(error.retry_after_ms));
  send_json(res, error.status, render_error(error));
}

void send_json(httplib::Response& res, int status, std::string body) {
  res.status = status;
  res.set_content(std::move(body), "application/json");
}

std::string request_id(const httplib::Request& req, httplib::Response& res) {
  auto id = req.get_header_value("X-Request-Id");
  bool sane = !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
  if (!sane) {
    // Request ids only need to be unique, not secret: a per-thread generator spares every
    // request a trip through OpenSSL's locked random pool.
    thread_local std::mt19937_64 random{std::random_device{}()};
    static constexpr char hex[] = "0123456789abcdef";
    id = "req_";
    for (int word = 0; word < 2; ++word) {
      auto bits = random();
      for (int i = 0; i < 12; ++i, bits >>= 4)
        id.push_back(hex[bits & 15]);
    }
  }
  res.set_header("X-Request-Id", id);
  return id;
}

std::optional<api_error> require_json(const httplib::Request& req) {
  if (!req.has_header("Content-Type"))
    return std::nullopt;
  auto type = req.get_header_value("Content-Type");
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
  if (type.rfind("application/json", 0) == 0)
    return std::nullopt;
  return api_error{415, "unsupported_media_type", "send the body as application/json", {}, {}, -1};
}

} // namespace emr

#include "http/exchange.hpp"

#include "http/caller_text.hpp"
#include "http/code_points.hpp"

#include "actors/arrivals.hpp"

#include <boost/algorithm/hex.hpp>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/predicate.hpp>
#include <boost/algorithm/string/trim.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <iterator>
#include <random>

namespace emr {

namespace {

// SplitMix64's finalizer: a bijection on 64-bit values, so distinct counts give distinct ids.
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// C0, DEL and C1.
bool control_character(std::uint32_t c) {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

// Unicode's White_Space characters but the controls.
bool white_space(std::uint32_t c) {
  return c == 0x20 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
         c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

bool listed(std::initializer_list<std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string field_list(std::initializer_list<std::string_view> names) {
  std::string text;
  for (auto name : names)
    text.append(text.empty() ? "" : ", ").append(name);
  return text;
}

} // namespace

void send_error(httplib::Response& res, const api_error& error) {
  // A refused request brings a batch no company.
  arrivals::leave_current();
  if (auto wait = retry_after(error))
    res.set_header("Retry-After", std::to_string(*wait));
  send_json(res, error.status, render_error(error));
}

void send_json(httplib::Response& res, int status, std::string body) {
  res.status = status;
  // httplib's set_content takes a copy (it has no overload for an rvalue), and an answer's
  // vectors are most of its bytes.
  res.body = std::move(body);
  res.headers.erase("Content-Type");
  res.set_header("Content-Type", "application/json");
}

std::string request_id(const httplib::Request& req, httplib::Response& res) {
  auto id = req.get_header_value("X-Request-Id");
  if (!is_token(id)) {
    // Request ids only need to be unique, not secret: a count, scrambled by a bijection so that
    // ids do not look sequential, after a random prefix that tells this process's ids from
    // another replica's. (A generator per thread cost each of a burst's fresh HTTP threads a
    // random_device and a seeding.)
    static const std::uint32_t process = std::random_device{}();
    static std::atomic<std::uint64_t> count{0};
    std::array<std::uint64_t, 1> mixed{splitmix64(count.fetch_add(1, std::memory_order_relaxed))};
    std::array<std::uint32_t, 1> prefix{process};
    id = "req_";
    boost::algorithm::hex_lower(prefix.begin(), prefix.end(), std::back_inserter(id));
    boost::algorithm::hex_lower(mixed.begin(), mixed.end(), std::back_inserter(id));
  }
  res.set_header("X-Request-Id", id);
  return id;
}

std::optional<api_error> require_json(const httplib::Request& req) {
  if (!req.has_header("Content-Type"))
    return std::nullopt;
  // The media type is what precedes any parameter (`; charset=utf-8`), compared whole:
  // application/jsonp or application/json-seq are other formats.
  auto type = req.get_header_value("Content-Type");
  type.erase(std::min(type.find(';'), type.size()));
  boost::algorithm::trim_right_if(type, boost::algorithm::is_any_of(" \t"));
  if (boost::algorithm::iequals(type, "application/json"))
    return std::nullopt;
  return api_error{415, "unsupported_media_type", "send the body as application/json", {}, {}, -1};
}

bool valid_name(std::string_view name) {
  std::size_t characters = 0;
  std::uint32_t first = 0;
  std::uint32_t last = 0;
  while (!name.empty()) {
    auto c = first_code_point(name);
    if (!c || control_character(c->value) || ++characters > 128)
      return false;
    first = characters == 1 ? c->value : first;
    last = c->value;
    name.remove_prefix(c->bytes);
  }
  return characters > 0 && !white_space(first) && !white_space(last);
}

api_error invalid_name(const std::string& field) {
  return invalid_request("'" + field +
                             "' must be 1 to 128 characters of UTF-8, without control characters "
                             "or a space at either end",
                         field);
}

std::optional<api_error> check_fields(const boost::json::object& body,
                                      std::initializer_list<std::string_view> known) {
  for (const auto& field : body)
    if (!listed(known, field.key()))
      return invalid_request("unknown field '" + std::string{field.key()} + "'; the fields are " +
                                 field_list(known),
                             std::string{field.key()});
  return std::nullopt;
}

std::optional<api_error> check_patch_fields(const boost::json::object& body,
                                            std::initializer_list<std::string_view> changeable,
                                            std::initializer_list<std::string_view> fixed) {
  if (body.empty())
    return invalid_request("nothing to change: give at least one of " + field_list(changeable));
  for (const auto& field : body)
    if (listed(fixed, field.key()))
      return invalid_request("'" + std::string{field.key()} +
                                 "' cannot be changed; the fields that can are " +
                                 field_list(changeable),
                             std::string{field.key()});
  return check_fields(body, changeable);
}

} // namespace emr

#include "http/refusals.hpp"

#include "http/exchange.hpp"
#include "http/route_table.hpp"

#include <boost/algorithm/string/predicate.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string_view>

namespace emr {

namespace {

api_error refused(int status, std::string type, std::string message) {
  return api_error{status, std::move(type), std::move(message), {}, {}, -1};
}

// A header that means one thing only once: two copies that disagree could be read one way here
// and another way by a proxy in front (request smuggling), so neither is trusted.
constexpr const char* singleton_headers[] = {"Host", "Content-Length", "Content-Type",
                                             "Authorization"};

// The body httplib read before its read timeout (or the caller's hang-up) is shorter than the
// Content-Length the caller promised.
bool body_cut_short(const httplib::Request& req) {
  auto declared = req.get_header_value("Content-Length");
  std::size_t length = 0;
  auto [end, ec] = std::from_chars(declared.data(), declared.data() + declared.size(), length);
  return ec == std::errc{} && end == declared.data() + declared.size() && req.body.size() < length;
}

// The methods whose body httplib reads (its expect_content).
bool carries_body(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE" ||
         method == "PRI";
}

} // namespace

std::optional<api_error> refuse_framing(const httplib::Request& req) {
  for (const auto* name : singleton_headers)
    if (req.get_header_value_count(name) > 1)
      return refused(400, "invalid_request",
                     std::string{"the "} + name + " header appears more than once");
  if (req.version == "HTTP/1.1" && !req.has_header("Host"))
    return refused(400, "invalid_request", "an HTTP/1.1 request needs a Host header");
  // httplib would inflate a compressed body before any handler runs, with no bound on what it
  // grows to (its size limit sees only the compressed length). No embeddings SDK compresses
  // request bodies, so none is accepted.
  for (std::size_t i = 0; i < req.get_header_value_count("Content-Encoding"); ++i)
    if (!boost::algorithm::iequals(req.get_header_value("Content-Encoding", i), "identity"))
      return refused(415, "unsupported_media_type",
                     "Content-Encoding " + req.get_header_value("Content-Encoding", i) +
                         " is not accepted; send the body uncompressed");
  // httplib checks the size limit only against Content-Length; a chunked body has none.
  if (req.has_header("Transfer-Encoding"))
    return refused(411, "length_required", "send a Content-Length; chunked bodies are refused");
  if (req.has_header("Content-Length")) {
    auto length = req.get_header_value("Content-Length");
    if (length.empty() ||
        !std::all_of(length.begin(), length.end(), [](unsigned char c) { return std::isdigit(c); }))
      return refused(400, "invalid_request", "Content-Length must be a number of bytes");
    // httplib reads a body only for the methods that carry one: another's body would be read as
    // the connection's next request (request smuggling behind a proxy).
    if (length.find_first_not_of('0') != std::string::npos && !carries_body(req.method))
      return refused(400, "invalid_request",
                     req.method + " requests carry no body here; send it without one");
  } else if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    // Without a length httplib would read the body until the read timeout, then refuse it.
    return refused(411, "length_required", "send a Content-Length (0 for an empty body)");
  }
  return std::nullopt;
}

void answer_refusal(const httplib::Request& req, httplib::Response& res,
                    const route_table& routes) {
  // httplib refuses the rest before it has read the request whole (the headers after a bad
  // request line, a body over the limit or cut short): what is left of it would be read as the
  // connection's next request, and every answer after would belong to the one before.
  if (res.status != 404)
    res.set_header("Connection", "close");
  switch (res.status) {
  case 404: {
    auto allowed = routes.allowed_methods(req.path);
    if (allowed.empty())
      return send_error(res, refused(404, "not_found", "no such endpoint"));
    res.set_header("Allow", allowed);
    return send_error(res, refused(405, "method_not_allowed",
                                   req.method + " is not allowed here; use " + allowed));
  }
  case 413:
    return send_error(res,
                      refused(413, "payload_too_large", "request body is over the size limit"));
  case 414:
    return send_error(res,
                      refused(414, "uri_too_long", "the request target is over the length limit"));
  case 400:
    if (body_cut_short(req))
      return send_error(res,
                        refused(408, "request_timeout",
                                "the body stopped short of its Content-Length; send it whole"));
    // httplib answers 400 for a method it does not know (BREW) or keeps no routes for (TRACE),
    // with the request line read.
    if (!req.version.empty() && !routes.serves(req.method))
      return send_error(
          res, refused(501, "not_implemented", "method " + req.method + " is not implemented"));
    return send_error(res, refused(400, "invalid_request", "malformed HTTP request"));
  default:
    return send_error(res, refused(res.status, "http_error", "request refused"));
  }
}

} // namespace emr

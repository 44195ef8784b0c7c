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

// The methods whose body httplib reads (its expect_content).
bool carries_body(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE" ||
         method == "PRI";
}

// A request with a body to read: framing has made sure its Content-Length is a number.
bool has_body(const httplib::Request& req) {
  auto declared = req.get_header_value("Content-Length");
  return declared.find_first_not_of('0') != std::string::npos;
}

// 405 with Allow for a known path asked with another method, else 404.
void send_unrouted(const httplib::Request& req, httplib::Response& res, const route_table& routes) {
  auto allowed = routes.allowed_methods(req.path);
  if (allowed.empty())
    return send_error(res, refused(404, "not_found", "no such endpoint"));
  res.set_header("Allow", allowed);
  send_error(
      res, refused(405, "method_not_allowed", req.method + " is not allowed here; use " + allowed));
}

// Framing emr will not read a body by, and bodies it would not take.
std::optional<api_error> refuse_framing(const httplib::Request& req, std::size_t max_body_bytes) {
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
  if (!req.has_header("Content-Length")) {
    // Without a length httplib would read the body until the connection ends, with no limit.
    if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH")
      return refused(411, "length_required", "send a Content-Length (0 for an empty body)");
    return std::nullopt;
  }
  // httplib parses a multipart form's parts itself, even from an empty body, and emr takes none.
  if (req.is_multipart_form_data())
    return require_json(req);
  auto declared = req.get_header_value("Content-Length");
  if (declared.empty() || !std::all_of(declared.begin(), declared.end(),
                                       [](unsigned char c) { return std::isdigit(c); }))
    return refused(400, "invalid_request", "Content-Length must be a number of bytes");
  if (declared.find_first_not_of('0') == std::string::npos)
    return std::nullopt;
  // httplib reads a body only for the methods that carry one: another's body would be read as
  // the connection's next request (request smuggling behind a proxy).
  if (!carries_body(req.method))
    return refused(400, "invalid_request",
                   req.method + " requests carry no body here; send it without one");
  // httplib would read a body over the limit to its end before refusing it.
  std::size_t length = 0;
  auto read = std::from_chars(declared.data(), declared.data() + declared.size(), length);
  if (read.ec != std::errc{} || length > max_body_bytes)
    return refused(413, "payload_too_large", "request body is over the size limit");
  // A body emr would refuse once read.
  return require_json(req);
}

} // namespace

bool refuse_before_body(const httplib::Request& req, httplib::Response& res,
                        const route_table& routes, std::size_t max_body_bytes) {
  std::optional<api_error> refusal;
  // HTTP/2's preface, whatever its framing: httplib would read a PRI request's body, to the
  // connection's end when it has no length.
  if (req.method == "PRI")
    refusal = refused(501, "not_implemented", "method PRI is not implemented; speak HTTP/1.1");
  else
    refusal = refuse_framing(req, max_body_bytes);
  if (refusal)
    send_error(res, *refusal);
  else if (has_body(req) && !routes.takes(req.method, req.path))
    send_unrouted(req, res, routes); // httplib would read the body whole first, for nobody
  else
    return false;
  // The body stays unread, so the connection cannot carry another request.
  res.set_header("Connection", "close");
  return true;
}

bool read_body(const httplib::Request& req, httplib::Response& res,
               const httplib::ContentReader& read) {
  // Into the request's own body, where httplib reads the body of a route that does not read it
  // itself; the request object is httplib's, not const.
  auto& body = const_cast<httplib::Request&>(req).body;
  bool whole = read([&body](const char* data, std::size_t n) {
    body.append(data, n);
    return true;
  });
  if (whole)
    return true;
  // Its length passed the limit in the head (refuse_before_body): a read that fails was cut short.
  res.set_header("Connection", "close");
  send_error(res, refused(408, "request_timeout",
                          "the body stopped short of its Content-Length; send it whole"));
  return false;
}

void refuse_unread(const httplib::Request& req, httplib::Response& res, const api_error& e) {
  if (has_body(req))
    res.set_header("Connection", "close");
  send_error(res, e);
}

void answer_refusal(const httplib::Request& req, httplib::Response& res,
                    const route_table& routes) {
  // httplib refuses the rest before it has read the request whole (the headers after a bad
  // request line): what is left of it would be read as the connection's next request, and every
  // answer after would belong to the one before.
  if (res.status != 404)
    res.set_header("Connection", "close");
  switch (res.status) {
  case 404:
    return send_unrouted(req, res, routes);
  case 414:
    return send_error(res,
                      refused(414, "uri_too_long", "the request target is over the length limit"));
  case 416:
    return send_error(res, refused(416, "range_not_satisfiable",
                                   "the Range header cannot be read; answers always go whole, so "
                                   "send none"));
  case 400:
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

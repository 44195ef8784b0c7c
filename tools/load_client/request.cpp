// Preparing the endpoint and writing request bodies; see request.hpp.

#include "tools/load_client/request.hpp"

#include <boost/json.hpp>

#include <stdexcept>

namespace emr::load {

namespace {

namespace json = boost::json;

std::string quoted(const std::string& s) {
  return json::serialize(json::string_view{s});
}

// One /v1/embeddings request object; a batch's sub-request also carries its id.
std::string embeddings_request(const prepared_endpoint& p, const caller& c, const std::string& id) {
  std::string body = id.empty() ? R"({"input":[)" : R"({"id":)" + quoted(id) + R"(,"input":[)";
  for (std::size_t i = 0; i < c.texts.size(); ++i) {
    if (i != 0)
      body += ',';
    body += quoted(c.texts[i]);
  }
  body += ']';
  if (!c.input_type.empty())
    body += R"(,"input_type":)" + quoted(c.input_type);
  if (!c.encoding_format.empty())
    body += R"(,"encoding_format":)" + quoted(c.encoding_format);
  body += p.body_suffix;
  return body;
}

} // namespace

prepared_endpoint prepare(const endpoint& e) {
  auto parsed = parse_endpoint(e.base_url);
  if (!parsed.endpoint)
    throw std::invalid_argument("base_url " + parsed.problem + ": " + e.base_url);
  const std::string& host = parsed.endpoint->host;
  if (parsed.endpoint->tls || (host != "localhost" && !host.starts_with("127.") && host != "::1"))
    throw std::invalid_argument("base_url must be http:// to a loopback address: " + e.base_url);
  prepared_endpoint p;
  p.target = std::move(*parsed.endpoint);
  p.path = e.path;
  if (!e.bearer.empty())
    p.headers.emplace("Authorization", "Bearer " + e.bearer);
  for (const auto& [name, value] : e.headers)
    p.headers.emplace(name, value);
  for (const auto& [key, raw] : e.extra_fields) {
    p.body_suffix += ',';
    p.body_suffix += quoted(key);
    p.body_suffix += ':';
    p.body_suffix += raw;
  }
  p.body_suffix += '}';
  return p;
}

std::string request_body(const prepared_endpoint& p, const caller& c) {
  if (c.batch.empty())
    return embeddings_request(p, c, {});
  std::string body = R"({"requests":[)";
  for (std::size_t i = 0; i < c.batch.size(); ++i) {
    if (i != 0)
      body += ',';
    body += embeddings_request(p, c.batch[i], std::to_string(i));
  }
  body += "]}";
  return body;
}

} // namespace emr::load

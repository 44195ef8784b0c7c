#pragma once
// The public embeddings API's JSON: parsing a caller's request and rendering the answer.

#include "actors/request.hpp"
#include "http/api_error.hpp"

#include <boost/json/value.hpp>

#include <variant>

namespace emr {

enum class vector_encoding { float_array, base64 };

/// Request-size limits that protect everyone else from one caller.
struct request_limits {
  std::size_t max_texts = 2048;
  std::size_t max_text_bytes = 256 * 1024;
};

/// A caller's request as parsed, before providers are resolved.
struct embed_request {
  std::string id;  ///< batch API only
  std::vector<std::string> texts;
  std::optional<std::string> provider;
  std::vector<std::string> providers;
  std::optional<std::string> model;
  std::optional<routing_policy> policy;
  std::string input_type;
  int dimensions = 0;
  vector_encoding encoding = vector_encoding::float_array;
};

/// Parses one request object; every field is type-checked and bad input named in the error.
std::variant<embed_request, api_error> parse_embed_request(const boost::json::value& body,
                                                           const request_limits& limits);

/// Parses a raw body as a JSON object (depth-limited).
std::variant<boost::json::value, api_error> parse_json_body(std::string_view body);

/// Appends one provider's standard response object for the caller's texts.
void append_embedding_response(std::string& out, const provider_answer& answer,
                               vector_encoding encoding);

/// The whole response body for a caller's outcome (any: standard shape; all: "results" map).
std::string render_outcome(const caller_outcome& outcome, routing_policy policy,
                           vector_encoding encoding);

} // namespace emr

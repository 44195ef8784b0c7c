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
  std::size_t max_batch_texts = 8192; ///< across all sub-requests of one batch request
  /// Vector bytes of one HTTP answer (vector_bytes): 2,048 texts of 3,072 floats take ~100 MB.
  std::size_t max_response_bytes = 256 * 1024 * 1024;
};

/// A caller's request as parsed, before providers are resolved.
struct embed_request {
  std::vector<std::string> texts;
  std::optional<std::string> provider;
  std::vector<std::string> providers;
  std::optional<std::string> model;
  std::optional<routing_policy> policy;
  /// "", "query", "document", "classification" or "clustering" (Cohere's "search_query" and
  /// "search_document" arrive as query and document); each provider adapter maps it.
  std::string input_type;
  int dimensions = 0;
  vector_encoding encoding = vector_encoding::float_array;
  cache_use cache; ///< `"cache": false` neither reads nor keeps
};

/// Parses one request object; every field is type-checked and bad input named in the error.
std::variant<embed_request, api_error> parse_embed_request(const boost::json::value& body,
                                                           const request_limits& limits);

/// What a request's Cache-Control header allows the embedding cache: `no-store` neither answers
/// from it nor keeps the new vectors, `no-cache` asks for fresh vectors and keeps them.
cache_use cache_control_use(std::string_view cache_control);

/// A batch sub-request's id: a non-empty string or an integer, echoed back as the caller sent it.
struct batch_id {
  boost::json::value sent;
  std::string text; ///< the string, or the integer's digits: ids must differ in this
};

/// The id of `requests[index]`, or why it is refused.
std::variant<batch_id, api_error> parse_batch_id(const boost::json::value& request,
                                                 std::size_t index);

/// How many texts `request`'s input holds, counted without parsing it (0 when it is no input).
std::size_t count_texts(const boost::json::value& request);

/// Parses a raw body as a JSON object (depth-limited).
std::variant<boost::json::value, api_error> parse_json_body(std::string_view body);

/// Most bytes the vectors of `rows` texts of `dims` dimensions take in the rendered answer: a
/// float's shortest decimal form has at most 15 characters, base64 takes 4 per 3 bytes.
std::size_t vector_bytes(std::size_t rows, std::size_t dims, vector_encoding encoding);
/// The same for every vector of an outcome.
std::size_t vector_bytes(const caller_outcome& outcome, vector_encoding encoding);

/// Appends one provider's standard response object for the caller's texts.
void append_embedding_response(std::string& out, const provider_answer& answer,
                               vector_encoding encoding);

/// What a caller sees for a provider-side failure.
api_error from_failure(const failure& f);

/// The whole response body for a caller's outcome (any: standard shape; all: "results" map).
std::string render_outcome(const caller_outcome& outcome, routing_policy policy,
                           vector_encoding encoding);

} // namespace emr

#pragma once
// Shared checks for decoding upstream answers: every row exactly once, of the expected length,
// finite.

#include "providers/provider.hpp"

#include <boost/json.hpp>

#include <span>
#include <string_view>

namespace emr {

/// Collects rows by index and rejects anything that could hand a caller someone else's vector.
class response_reader {
public:
  explicit response_reader(expected_shape expected);

  /// Stores the vector for `index` given as a JSON array of numbers or a base64 string.
  bool add(std::int64_t index, const boost::json::value& embedding);
  /// Stores `values` as the vector for `index`; `unreadable`, if not empty, says why the
  /// embedding could not be read (told once the index is known to be good).
  bool add_values(std::int64_t index, std::span<const float> values,
                  std::string_view unreadable = {});
  /// The matrix once every row arrived exactly once; otherwise the reason.
  decoded_response finish(std::int64_t total_tokens);
  /// Fails the whole response with `why` (first failure wins).
  decoded_response fail(std::string why);

private:
  bool set_dims(std::size_t dims);
  expected_shape expected_;
  std::size_t filled_ = 0;
  embedding_matrix matrix_;
  std::vector<bool> seen_;
  std::vector<float> scratch_;
  std::string error_;
};

/// Parses an upstream body as JSON, failing cleanly on anything malformed or truncated.
std::optional<boost::json::value> parse_upstream_json(std::string_view body, std::string& error);

/// A short printable excerpt of an upstream body, for error messages.
std::string body_excerpt(std::string_view body);

/// The string at `key` in `v` if `v` is an object holding a string there.
std::optional<std::string> string_field(const boost::json::value& v, std::string_view key);

} // namespace emr

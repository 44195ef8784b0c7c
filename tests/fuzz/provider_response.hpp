#pragma once
// One provider adapter fuzzed from upstream bytes to caller bytes: the 2xx body is decoded, its
// rows are handed to two callers the way a batcher splits a shared call, and both callers'
// answers are rendered and read back. Every vector a caller gets must be the one sent for its row.

#include "http/embed_request.hpp"
#include "providers/float_codec.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>

namespace emr::fuzz {

inline void require(bool holds) {
  if (!holds)
    std::abort();
}

// Shortest round-trip decimals come back through a double; allow the one float of rounding
// a double-parsed decimal may move.
inline bool same_float(double parsed, float sent) {
  auto f = static_cast<float>(parsed);
  return f == sent || f == std::nextafter(sent, INFINITY) || f == std::nextafter(sent, -INFINITY);
}

/// Checks one standard response object: exactly `rows` of `m`, in order, in `encoding`.
inline void require_rows(const boost::json::value& response, const embedding_matrix& m,
                         const std::vector<std::uint32_t>& rows, vector_encoding encoding) {
  const auto& data = response.at("data").as_array();
  require(data.size() == rows.size());
  std::vector<float> decoded;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    require(data[i].at("index").as_int64() == static_cast<std::int64_t>(i));
    const auto& embedding = data[i].at("embedding");
    const float* sent = m.row(rows[i]);
    if (encoding == vector_encoding::base64) {
      const auto& text = embedding.as_string();
      decoded.clear();
      require(decode_base64_floats({text.data(), text.size()}, decoded));
      require(decoded.size() == m.dims &&
              std::memcmp(decoded.data(), sent, m.dims * sizeof(float)) == 0);
    } else {
      const auto& values = embedding.as_array();
      require(values.size() == m.dims);
      for (std::size_t d = 0; d < m.dims; ++d)
        require(same_float(values[d].to_number<double>(), sent[d]));
    }
  }
}

/// Runs one input: the first byte picks how many texts the call carried (1 + byte % 8, so the
/// seed files' leading '0' means one text, '1' two) and, when its 0x40 bit is set, the length
/// every vector must have (1 + byte / 8 % 8: 'I' means two texts of two dimensions); the rest is
/// the upstream's body.
inline int run_provider_response(const embedding_provider& provider, const std::uint8_t* data,
                                 std::size_t size) {
  if (size == 0)
    return 0;
  expected_shape expected{1u + data[0] % 8u, (data[0] & 0x40) ? 1u + data[0] / 8u % 8u : 0u};
  std::string_view body{reinterpret_cast<const char*>(data + 1), size - 1};
  provider.error_message(body);
  auto decoded = provider.decode_response(body, expected);
  if (!decoded.matrix) {
    require(!decoded.error.empty());
    return 0;
  }
  auto m = std::make_shared<const embedding_matrix>(std::move(*decoded.matrix));
  require(m->rows == expected.rows && m->dims > 0 && m->values.size() == m->rows * m->dims);
  require(expected.dims == 0 || m->dims == expected.dims);
  for (float f : m->values)
    require(std::isfinite(f));

  // The first caller holds the rows in order across two chunks, the second in reverse in one.
  std::vector<std::uint32_t> in_order(m->rows);
  std::iota(in_order.begin(), in_order.end(), 0u);
  std::vector<std::uint32_t> reversed{in_order.rbegin(), in_order.rend()};
  auto half = in_order.size() / 2;
  provider_answer first{"first", "model", {}, m->total_tokens};
  first.chunks.push_back(chunk_result{m, {in_order.begin(), in_order.begin() + half}, 0, {}, {}});
  first.chunks.push_back(chunk_result{m, {in_order.begin() + half, in_order.end()}, 0, {}, {}});
  provider_answer second{"second", "model", {chunk_result{m, reversed, 0, {}, {}}}, 0};

  for (auto encoding : {vector_encoding::float_array, vector_encoding::base64}) {
    auto any = boost::json::parse(render_outcome({{first}, {}}, routing_policy::any, encoding));
    require_rows(any, *m, in_order, encoding);
    auto all =
        boost::json::parse(render_outcome({{first, second}, {}}, routing_policy::all, encoding));
    require_rows(all.at("results").at("first"), *m, in_order, encoding);
    require_rows(all.at("results").at("second"), *m, reversed, encoding);
  }
  return 0;
}

} // namespace emr::fuzz

#include "providers/response_reader.hpp"

#include "providers/float_codec.hpp"
#include "providers/matrix_buffers.hpp"

#include <algorithm>
#include <cmath>

namespace json = boost::json;

namespace emr {

response_reader::response_reader(expected_shape expected)
    : expected_(expected), seen_(expected.rows, false) {
  matrix_.rows = expected.rows;
}

bool response_reader::set_dims(std::size_t dims) {
  if (dims == 0) {
    error_ = "upstream returned an empty embedding";
    return false;
  }
  if (expected_.dims != 0 && dims != expected_.dims) {
    error_ = "upstream returned embeddings of " + std::to_string(dims) + " dimensions where " +
             std::to_string(expected_.dims) + " were expected";
    return false;
  }
  if (expected_.dims == 0 && dims > most_unknown_dims) {
    error_ = "upstream returned embeddings of " + std::to_string(dims) +
             " dimensions, more than emr accepts (" + std::to_string(most_unknown_dims) + ")";
    return false;
  }
  // The first row sizes the whole matrix: a row far longer than the others would be allocated
  // for every row before the second could show the mismatch.
  if (matrix_.dims == 0 &&
      dims > expected_.most_values / std::max<std::size_t>(expected_.rows, 1)) {
    error_ = "upstream answer is too short for " + std::to_string(expected_.rows) +
             " embeddings of " + std::to_string(dims) + " dimensions";
    return false;
  }
  if (matrix_.dims == 0) {
    matrix_.dims = dims;
    matrix_.values = decoded_matrix_buffers().take(expected_.rows * dims);
    matrix_.values.resize(expected_.rows * dims); // zeroes
    return true;
  }
  if (matrix_.dims != dims) {
    error_ = "upstream returned embeddings of different dimensions";
    return false;
  }
  return true;
}

bool response_reader::add(std::int64_t index, const json::value& embedding) {
  scratch_.clear();
  std::string_view unreadable;
  if (auto s = embedding.if_string()) {
    if (!decode_base64_floats(std::string_view{s->data(), s->size()}, scratch_))
      unreadable = "upstream returned an invalid base64 embedding";
  } else if (auto arr = embedding.if_array()) {
    scratch_.reserve(arr->size());
    for (const auto& x : *arr) {
      if (auto p = x.if_double())
        scratch_.push_back(static_cast<float>(*p));
      else if (auto i = x.if_int64())
        scratch_.push_back(static_cast<float>(static_cast<double>(*i)));
      else if (auto u = x.if_uint64())
        scratch_.push_back(static_cast<float>(static_cast<double>(*u)));
      else {
        unreadable = "upstream returned a non-numeric embedding value";
        break;
      }
    }
  } else {
    unreadable = "upstream returned an embedding that is neither an array nor a string";
  }
  return add_values(index, scratch_, unreadable);
}

bool response_reader::add_values(std::int64_t index, std::span<const float> values,
                                 std::string_view unreadable) {
  if (!error_.empty())
    return false;
  if (index < 0 || static_cast<std::size_t>(index) >= expected_.rows) {
    error_ = "upstream returned an embedding index out of range";
    return false;
  }
  auto row = static_cast<std::size_t>(index);
  if (seen_[row]) {
    error_ = "upstream returned the same embedding index twice";
    return false;
  }
  if (!unreadable.empty()) {
    error_ = unreadable;
    return false;
  }
  for (float f : values) {
    if (!std::isfinite(f)) {
      error_ = "upstream returned a non-finite embedding value";
      return false;
    }
  }
  if (!set_dims(values.size()))
    return false;
  std::copy(values.begin(), values.end(), matrix_.values.begin() + row * matrix_.dims);
  seen_[row] = true;
  ++filled_;
  return true;
}

decoded_response response_reader::fail(std::string why) {
  if (error_.empty())
    error_ = std::move(why);
  return {std::nullopt, error_};
}

decoded_response response_reader::finish(std::int64_t total_tokens) {
  if (!error_.empty())
    return {std::nullopt, error_};
  if (filled_ != expected_.rows)
    return fail("upstream returned " + std::to_string(filled_) + " embeddings for " +
                std::to_string(expected_.rows) + " inputs");
  matrix_.total_tokens = total_tokens;
  return {std::move(matrix_), {}};
}

std::optional<json::value> parse_upstream_json(std::string_view body, std::string& error) {
  json::error_code ec;
  json::parse_options opts;
  opts.max_depth = 16;
  auto v = json::parse(body, ec, {}, opts);
  if (ec) {
    error = "upstream returned malformed JSON (" + ec.message() + "): " + body_excerpt(body);
    return std::nullopt;
  }
  return v;
}

std::string body_excerpt(std::string_view body) {
  constexpr std::size_t max_len = 200;
  std::string out;
  for (char c : body.substr(0, max_len))
    out.push_back((static_cast<unsigned char>(c) < 0x20) ? ' ' : c);
  if (body.size() > max_len)
    out += "...";
  return out;
}

std::optional<std::string> string_field(const json::value& v, std::string_view key) {
  if (auto obj = v.if_object())
    if (auto f = obj->if_contains(key))
      if (auto s = f->if_string())
        return std::string{s->data(), s->size()};
  return std::nullopt;
}

} // namespace emr

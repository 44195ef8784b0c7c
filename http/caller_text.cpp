#include "http/caller_text.hpp"

#include <boost/algorithm/hex.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>

namespace emr {

bool is_token(std::string_view text) {
  return !text.empty() && text.size() <= 128 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

std::string to_token(std::string_view text) {
  if (is_token(text))
    return std::string{text};
  std::string token = "x";
  auto hash = static_cast<std::uint64_t>(std::hash<std::string_view>{}(text));
  boost::algorithm::hex_lower(&hash, &hash + 1, std::back_inserter(token));
  return token;
}

std::string json_quoted(std::string_view text) {
  return boost::json::serialize(boost::json::string{text});
}

} // namespace emr

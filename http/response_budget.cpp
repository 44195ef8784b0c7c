#include "http/response_budget.hpp"

#include <string>

namespace emr {

std::optional<api_error> response_budget::take(std::size_t bytes) {
  if (bytes <= left_) {
    left_ -= bytes;
    return std::nullopt;
  }
  auto of =
      left_ == limit_ ? std::string{} : " (" + std::to_string(left_) + " left of it in this batch)";
  return api_error{413,
                   "payload_too_large",
                   "the vectors asked for would take up to " + std::to_string(bytes) +
                       " bytes, over limits.max_response_bytes = " + std::to_string(limit_) + of +
                       "; ask for fewer texts or dimensions, or use encoding_format \"base64\"",
                   "input",
                   "response_too_large",
                   -1};
}

} // namespace emr

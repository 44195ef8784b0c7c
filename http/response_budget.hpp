#pragma once
// How many vector bytes one HTTP answer may hold (limits.max_response_bytes). Deduplication and
// answer reuse make repeated texts nearly free upstream, so a small request can ask for a huge
// answer: the answer, not the upstream work, is what this bounds. Checked before any upstream
// work when the dimensions are known, and again before rendering.

#include "http/api_error.hpp"

#include <cstddef>
#include <optional>

namespace emr {

class response_budget {
public:
  explicit response_budget(std::size_t limit) : limit_(limit), left_(limit) {}

  /// Takes `bytes` from what is left, or answers the 413 that names the limit if they do not fit
  /// (and takes nothing).
  std::optional<api_error> take(std::size_t bytes);

private:
  std::size_t limit_;
  std::size_t left_;
};

} // namespace emr

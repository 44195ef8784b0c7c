#pragma once
// What a provider's answer says about its rate limits. OpenAI sends six x-ratelimit-* headers on
// every answer (providers.md §3.7); Voyage and Cohere document none, so there emr learns a limit
// from its own count of calls when a 429 comes.

#include <chrono>
#include <cstdint>
#include <optional>

namespace emr {

/// Each field is unset when the answer did not carry it (or carried something unreadable).
struct rate_limit_headers {
  std::optional<std::uint64_t> limit_requests, remaining_requests;
  std::optional<std::uint64_t> limit_tokens, remaining_tokens;
  /// Until the window holds the whole limit again.
  std::optional<std::chrono::milliseconds> reset_requests, reset_tokens;

  bool any() const {
    return limit_requests || remaining_requests || limit_tokens || remaining_tokens;
  }
};

} // namespace emr

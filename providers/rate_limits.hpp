#pragma once
// What a provider's answer says about its rate limits. OpenAI sends six x-ratelimit-* headers on
// every answer (providers.md §3.7); Voyage and Cohere document none, so there emr learns a limit
// from its own count of calls when a 429 comes.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

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

/// Fills the field an `x-ratelimit-*` header names, whatever the letter case of its name. Any
/// other header, and a value that does not parse, changes nothing.
void read_rate_limit_header(rate_limit_headers& limits, std::string_view name,
                            std::string_view value);

/// What an answer's headers say; `Headers` is any range of (name, value) pairs, httplib::Headers
/// among them, so providers/ needs no HTTP library to read them.
template <class Headers> rate_limit_headers read_rate_limit_headers(const Headers& headers) {
  rate_limit_headers limits;
  for (const auto& [name, value] : headers)
    read_rate_limit_header(limits, name, value);
  return limits;
}

/// A Go duration as OpenAI's reset headers write it ("12ms", "2.5s", "6m0s", "1h2m3.5s"), rounded
/// up to whole milliseconds; nothing for a negative, malformed or overflowing one.
std::optional<std::chrono::milliseconds> parse_go_duration(std::string_view text);

} // namespace emr

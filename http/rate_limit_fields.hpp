#pragma once
// Rate-limit fields of admin JSON bodies: a provider's limits and a caller key's.

#include "http/api_error.hpp"
#include "storage/store.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string_view>

namespace emr {

/// The highest limits an operator may set: far above any provider's published tier, and low
/// enough that budgets computed from them stay far from overflowing.
inline constexpr std::int64_t most_requests_per_minute = 10'000'000;
inline constexpr std::int64_t most_tokens_per_minute = 10'000'000'000;
inline constexpr std::int64_t most_tokens_per_day = 1'000'000'000'000;

/// Reads the integer field `key` into `out` when it is there and not null.
std::optional<api_error> read_rate_limit(const boost::json::object& body, std::string_view key,
                                         std::int64_t& out);
/// Whether `value` is a limit from 0 (not set) to `most`.
std::optional<api_error> check_rate_limit(std::string_view key, std::int64_t value,
                                          std::int64_t most);

/// Applies the key limit fields present in `body` (requests_per_minute, tokens_per_minute,
/// tokens_per_day; null or 0 clears one) to `limits`, checking their ranges.
std::optional<api_error> read_key_limits(const boost::json::object& body, key_limits& limits);

} // namespace emr

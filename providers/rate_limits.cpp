#include "providers/rate_limits.hpp"

#include <boost/algorithm/string/predicate.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

namespace emr {

namespace {

constexpr std::string_view header_prefix = "x-ratelimit-";

std::string_view trim_blanks(std::string_view s) {
  auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos)
    return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

std::optional<std::uint64_t> parse_count(std::string_view text) {
  auto s = trim_blanks(text);
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size())
    return std::nullopt;
  return value;
}

struct duration_unit {
  std::string_view name;
  std::uint64_t nanoseconds;
};

// Go's own table (time.ParseDuration), both spellings of the micro sign included.
constexpr std::array<duration_unit, 8> duration_units{{{"ns", 1},
                                                       {"us", 1'000},
                                                       {"\u00b5s", 1'000},
                                                       {"\u03bcs", 1'000},
                                                       {"ms", 1'000'000},
                                                       {"s", 1'000'000'000},
                                                       {"m", 60'000'000'000},
                                                       {"h", 3'600'000'000'000}}};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/// Digits at the front of `s`, consumed; past 64 bits `value` stops growing and `overflow` is set.
std::size_t take_digits(std::string_view& s, std::uint64_t& value, bool& overflow) {
  std::size_t n = 0;
  for (; n < s.size() && is_digit(s[n]); ++n) {
    auto digit = static_cast<std::uint64_t>(s[n] - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
      overflow = true;
    else
      value = value * 10 + digit;
  }
  s.remove_prefix(n);
  return n;
}

// Go counts in int64 nanoseconds; so does this, and a longer duration is no duration.
constexpr auto most_nanoseconds =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

/// One number and its unit ("2.5s", "6m") off the front of `s`, in nanoseconds.
std::optional<std::uint64_t> take_duration_part(std::string_view& s) {
  std::uint64_t whole = 0;
  bool overflow = false;
  auto whole_digits = take_digits(s, whole, overflow);
  // Like Go, fractional digits past what 63 bits hold are ignored rather than refused.
  std::uint64_t fraction = 0;
  double scale = 1;
  std::size_t fraction_digits = 0;
  if (!s.empty() && s.front() == '.') {
    s.remove_prefix(1);
    for (; fraction_digits < s.size() && is_digit(s[fraction_digits]); ++fraction_digits) {
      if (fraction > most_nanoseconds / 10)
        continue;
      fraction = fraction * 10 + static_cast<std::uint64_t>(s[fraction_digits] - '0');
      scale *= 10;
    }
    s.remove_prefix(fraction_digits);
  }
  if (overflow || whole_digits + fraction_digits == 0)
    return std::nullopt;
  auto unit_name = s.substr(0, s.find_first_of(".0123456789"));
  s.remove_prefix(unit_name.size());
  auto unit = std::find_if(duration_units.begin(), duration_units.end(),
                           [&](const duration_unit& u) { return u.name == unit_name; });
  if (unit == duration_units.end() || whole > most_nanoseconds / unit->nanoseconds)
    return std::nullopt;
  // The fraction in floating point, as Go does it.
  return whole * unit->nanoseconds +
         static_cast<std::uint64_t>(static_cast<double>(fraction) *
                                    (static_cast<double>(unit->nanoseconds) / scale));
}

} // namespace

std::optional<std::chrono::milliseconds> parse_go_duration(std::string_view text) {
  auto s = trim_blanks(text);
  if (!s.empty() && s.front() == '+')
    s.remove_prefix(1);
  if (s == "0")
    return std::chrono::milliseconds{0};
  if (s.empty())
    return std::nullopt;
  std::uint64_t total = 0;
  while (!s.empty()) {
    auto part = take_duration_part(s);
    if (!part || *part > most_nanoseconds - total)
      return std::nullopt;
    total += *part;
  }
  constexpr std::uint64_t per_millisecond = 1'000'000;
  return std::chrono::milliseconds{
      static_cast<std::int64_t>(total / per_millisecond + (total % per_millisecond != 0))};
}

void read_rate_limit_header(rate_limit_headers& limits, std::string_view name,
                            std::string_view value) {
  if (!boost::algorithm::istarts_with(name, header_prefix))
    return;
  auto field = name.substr(header_prefix.size());
  auto count = [&](std::optional<std::uint64_t>& out) {
    if (auto parsed = parse_count(value))
      out = parsed;
  };
  auto duration = [&](std::optional<std::chrono::milliseconds>& out) {
    if (auto parsed = parse_go_duration(value))
      out = parsed;
  };
  using boost::algorithm::iequals;
  if (iequals(field, "limit-requests"))
    count(limits.limit_requests);
  else if (iequals(field, "limit-tokens"))
    count(limits.limit_tokens);
  else if (iequals(field, "remaining-requests"))
    count(limits.remaining_requests);
  else if (iequals(field, "remaining-tokens"))
    count(limits.remaining_tokens);
  else if (iequals(field, "reset-requests"))
    duration(limits.reset_requests);
  else if (iequals(field, "reset-tokens"))
    duration(limits.reset_tokens);
}

} // namespace emr

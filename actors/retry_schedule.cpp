#include "actors/retry_schedule.hpp"

#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/trim.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <string>

namespace emr {

bool is_retryable(int status) {
  // Any 5xx may pass (a proxy in front of the provider answers 520-524, an overloaded API 529),
  // but 501 and 505 say the provider will never take this request. 408 and 409 are the ones a
  // client may repeat as it is, as the providers' own SDKs do.
  if (status >= 500)
    return status != 501 && status != 505;
  return status == 0 || status == 408 || status == 409 || status == 429;
}

namespace {

std::optional<double> parse_number(std::string_view s) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v) || v < 0)
    return std::nullopt;
  return v;
}

// IMF-fixdate, RFC 850 and asctime, the three forms HTTP allows.
std::optional<std::time_t> parse_http_date(std::string_view s) {
  static constexpr const char* formats[] = {"%a, %d %b %Y %H:%M:%S GMT",
                                            "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"};
  std::string text{s};
  for (auto format : formats) {
    std::tm tm{};
    auto end = strptime(text.c_str(), format, &tm);
    if (end && *end == '\0')
      return timegm(&tm);
  }
  return std::nullopt;
}

} // namespace

std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view retry_after, std::string_view retry_after_ms,
                  std::chrono::system_clock::time_point now) {
  using std::chrono::milliseconds;
  // A day is far beyond any budget; clamping keeps the arithmetic safe from absurd values.
  constexpr double max_ms = 86'400'000.0;
  auto blank = boost::algorithm::is_any_of(" \t");
  if (auto ms = parse_number(boost::algorithm::trim_copy_if(retry_after_ms, blank)))
    return milliseconds{static_cast<std::int64_t>(std::ceil(std::min(*ms, max_ms)))};
  auto ra = boost::algorithm::trim_copy_if(retry_after, blank);
  if (ra.empty())
    return std::nullopt;
  if (auto seconds = parse_number(ra))
    return milliseconds{static_cast<std::int64_t>(std::ceil(std::min(*seconds * 1000.0, max_ms)))};
  if (auto when = parse_http_date(ra)) {
    // In milliseconds: the clock's nanoseconds overflow for dates before 1678 or after 2261.
    auto ms = std::chrono::seconds{*when} -
              std::chrono::duration_cast<milliseconds>(now.time_since_epoch());
    return std::clamp(ms, milliseconds{0}, milliseconds{static_cast<std::int64_t>(max_ms)});
  }
  return std::nullopt;
}

retry_schedule::retry_schedule(retry_settings settings, std::uint64_t seed)
    : settings_(settings), rng_(seed) {}

std::optional<std::chrono::milliseconds>
retry_schedule::next_wait(int failed_attempts, std::optional<std::chrono::milliseconds> server_wait,
                          std::chrono::milliseconds elapsed) {
  using std::chrono::milliseconds;
  if (failed_attempts > settings_.max_retries)
    return std::nullopt;
  auto remaining = settings_.budget - elapsed;
  if (remaining <= milliseconds{0})
    return std::nullopt;
  milliseconds wait;
  if (server_wait) {
    // The server's wait is a floor: asking earlier only earns another 429.
    if (*server_wait > settings_.attempt_cap || *server_wait > remaining)
      return std::nullopt;
    std::uniform_int_distribution<std::int64_t> jitter{0, settings_.jitter.count()};
    wait = *server_wait + milliseconds{jitter(rng_)};
  } else {
    auto exponent = std::min(failed_attempts - 1, 20);
    auto ceiling = std::min(settings_.attempt_cap, settings_.base * (std::int64_t{1} << exponent));
    std::uniform_int_distribution<std::int64_t> full_jitter{0, ceiling.count()};
    wait = milliseconds{full_jitter(rng_)};
  }
  wait = std::min(wait, remaining);
  waited_ += wait;
  return wait;
}

} // namespace emr

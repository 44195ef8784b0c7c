#pragma once
// Which upstream failures are retried, and how long to wait before each retry.
// Retry-After is a floor, never shortened by jitter; without one, AWS-style full jitter.

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace emr {

struct retry_settings {
  int max_retries = 2;
  std::chrono::milliseconds attempt_cap{15'000}; ///< longest single wait
  /// No attempt of one batch starts later than this after its first began: attempts count too.
  std::chrono::milliseconds budget{45'000};
  std::chrono::milliseconds base{500};   ///< first backoff ceiling without Retry-After
  std::chrono::milliseconds jitter{250}; ///< added on top of a Retry-After
};

/// 429, 500, 502, 503, 504 and transport failures (status 0) are worth another attempt.
bool is_retryable(int status);

/// The server's requested wait from `retry-after-ms` (preferred) or `Retry-After`
/// (delta-seconds or HTTP-date, relative to `now`); nullopt when absent or unparsable.
std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view retry_after, std::string_view retry_after_ms,
                  std::chrono::system_clock::time_point now);

/// The waits of one batch call across its attempts.
class retry_schedule {
public:
  retry_schedule(retry_settings settings, std::uint64_t seed);

  /// The wait before the next attempt after `failed_attempts` retryable failures, the last of
  /// which asked for `server_wait`, `elapsed` after the first attempt began (attempts and waits
  /// alike); nullopt when retrying must stop, as it must when the attempt would start past the
  /// budget.
  std::optional<std::chrono::milliseconds>
  next_wait(int failed_attempts, std::optional<std::chrono::milliseconds> server_wait,
            std::chrono::milliseconds elapsed);

  std::chrono::milliseconds waited() const { return waited_; }

private:
  retry_settings settings_;
  std::mt19937_64 rng_;
  std::chrono::milliseconds waited_{0};
};

} // namespace emr

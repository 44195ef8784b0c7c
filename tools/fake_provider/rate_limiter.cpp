// Sliding-window rate limits; see rate_limiter.hpp.

#include "tools/fake_provider/rate_limiter.hpp"

namespace emr::fake {

rate_limiter::verdict rate_limiter::admit(const std::string& key, long tokens) {
  if (!enabled())
    return {};
  const auto now = clock::now();
  std::lock_guard lock(mutex_);
  auto& window = windows_[key];
  expire(window, now);
  long used_tokens = 0;
  for (const auto& e : window)
    used_tokens += e.tokens;
  const long used_requests = static_cast<long>(window.size());
  if (rpm_ > 0 && used_requests + 1 > rpm_)
    return {false, false, rpm_, used_requests, 1, seconds_until(window.front().at, now)};
  if (tpm_ > 0 && used_tokens + tokens > tpm_)
    return {false, true, tpm_, used_tokens, tokens, token_wait(window, tokens, now)};
  window.push_back({now, tokens});
  return {};
}

rate_limiter::usage rate_limiter::peek(const std::string& key) {
  usage u;
  if (!enabled())
    return u;
  const auto now = clock::now();
  std::lock_guard lock(mutex_);
  auto& window = windows_[key];
  expire(window, now);
  u.requests = static_cast<long>(window.size());
  for (const auto& e : window)
    u.tokens += e.tokens;
  if (!window.empty()) {
    u.reset_requests_s = seconds_until(window.front().at, now);
    u.reset_tokens_s = seconds_until(window.back().at, now);
  }
  return u;
}

void rate_limiter::reset() {
  std::lock_guard lock(mutex_);
  windows_.clear();
}

void rate_limiter::expire(std::deque<entry>& window, clock::time_point now) {
  while (!window.empty() && now - window.front().at >= window_length)
    window.pop_front();
}

double rate_limiter::seconds_until(clock::time_point admitted, clock::time_point now) {
  return std::chrono::duration<double>(admitted + window_length - now).count();
}

// Time until enough old entries leave the window for `tokens` more to fit.
double rate_limiter::token_wait(const std::deque<entry>& window, long tokens,
                                clock::time_point now) const {
  if (tokens > tpm_)
    return 60.0;
  long used = 0;
  for (const auto& e : window)
    used += e.tokens;
  for (const auto& e : window) {
    used -= e.tokens;
    if (used + tokens <= tpm_)
      return seconds_until(e.at, now);
  }
  return 60.0;
}

} // namespace emr::fake

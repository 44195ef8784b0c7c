#include "http/key_quotas.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace emr {

namespace {

api_error over_limit(std::string what, std::int64_t wait_s) {
  return api_error{429, "rate_limited", "this key's " + what, {}, "key_limit", wait_s * 1000};
}

} // namespace

void key_quotas::minute_window::add(std::int64_t now, std::int64_t r, std::int64_t t) {
  auto slot = static_cast<std::size_t>(now % 60);
  if (second[slot] != now) {
    second[slot] = now;
    requests[slot] = tokens[slot] = 0;
  }
  requests[slot] += r;
  tokens[slot] += t;
}

void key_quotas::minute_window::correct(std::int64_t at, std::int64_t now, std::int64_t t) {
  auto slot = static_cast<std::size_t>(at % 60);
  if (at > now - 60 && second[slot] == at)
    tokens[slot] += t;
}

std::pair<std::int64_t, std::int64_t> key_quotas::minute_window::sums(std::int64_t now) const {
  std::int64_t r = 0, t = 0;
  for (std::size_t i = 0; i < 60; ++i)
    if (second[i] > now - 60) {
      r += requests[i];
      t += tokens[i];
    }
  return {r, t};
}

std::int64_t key_quotas::minute_window::wait(std::int64_t now, std::int64_t excess_r,
                                             std::int64_t excess_t) const {
  // Oldest second first: each leaves the window 60 s after it began.
  for (std::int64_t s = now - 59; s <= now; ++s) {
    auto slot = static_cast<std::size_t>(s % 60);
    if (second[slot] != s)
      continue;
    excess_r -= requests[slot];
    excess_t -= tokens[slot];
    if (excess_r <= 0 && excess_t <= 0)
      return s + 60 - now;
  }
  return 60;
}

key_quotas::key_quotas(key_usage_meter& usage, std::function<std::int64_t()> now)
    : usage_(usage), now_(std::move(now)) {}

void key_quotas::load(const std::vector<key_record>& keys) {
  for (const auto& k : keys)
    set(k.id, k.revoked_at ? key_limits{} : k.limits);
}

void key_quotas::set(std::int64_t key_id, const key_limits& limits) {
  std::lock_guard guard{mutex_};
  if (limits == key_limits{}) {
    keys_.erase(key_id);
    return;
  }
  auto [it, added] = keys_.try_emplace(key_id);
  it->second.limits = limits;
  if (added)
    it->second.generation = ++last_generation_;
}

void key_quotas::refresh_day(std::int64_t key_id, std::int64_t now) {
  auto today = utc_day(now);
  std::int64_t since_before = 0;
  {
    std::lock_guard guard{mutex_};
    auto it = keys_.find(key_id);
    if (it == keys_.end() || it->second.limits.tokens_per_day == 0 || it->second.reading ||
        (it->second.day == today && now - it->second.day_read_at < day_refresh_s))
      return;
    it->second.reading = true;
    since_before = it->second.day_since;
  }
  // Read outside the lock: the store may be slow, and other keys must not wait for it.
  std::optional<std::int64_t> counted;
  try {
    std::int64_t tokens = 0;
    for (const auto& row : usage_.usage(key_id, today))
      tokens += row.tokens;
    counted = tokens;
  } catch (const storage_error& e) {
    spdlog::warn("cannot read key {}'s use today; its last count stays in force: {}", key_id,
                 e.what());
  }
  std::lock_guard guard{mutex_};
  auto it = keys_.find(key_id);
  if (it == keys_.end())
    return;
  auto& k = it->second;
  k.reading = false;
  k.day_read_at = now; // a failed read is not retried by every request
  if (!counted)
    return;
  // What was counted here while the store was read stays counted: it may be in the read too,
  // which errs on the side of the limit until the next read.
  k.day_since = k.day == today ? k.day_since - since_before : 0;
  k.day = today;
  k.day_counted = *counted;
}

std::variant<key_quotas::admission, api_error>
key_quotas::admit(std::int64_t key_id, std::int64_t requests, std::int64_t tokens) {
  auto now = now_();
  {
    // Most keys have no limit: one lookup, and nothing else, for them.
    std::lock_guard guard{mutex_};
    if (!keys_.contains(key_id))
      return admission{key_id, tokens, now};
  }
  refresh_day(key_id, now);
  std::lock_guard guard{mutex_};
  auto it = keys_.find(key_id);
  if (it == keys_.end())
    return admission{key_id, tokens, now};
  auto& k = it->second;
  const auto& limits = k.limits;
  auto never = [&](std::int64_t limit, std::string what) {
    return invalid_request("the request needs about " + std::to_string(tokens) +
                               " tokens, more than this key's limit of " + std::to_string(limit) +
                               " " + what,
                           "input");
  };
  if (limits.tokens_per_minute > 0 && tokens > limits.tokens_per_minute)
    return never(limits.tokens_per_minute, "tokens a minute");
  if (limits.tokens_per_day > 0 && tokens > limits.tokens_per_day)
    return never(limits.tokens_per_day, "tokens a day");
  if (limits.requests_per_minute > 0 && requests > limits.requests_per_minute)
    return invalid_request("the batch holds " + std::to_string(requests) +
                               " requests, more than this key's limit of " +
                               std::to_string(limits.requests_per_minute) + " a minute",
                           "requests");
  auto [used_r, used_t] = k.minute.sums(now);
  auto excess_r = limits.requests_per_minute > 0 ? used_r + requests - limits.requests_per_minute
                                                 : std::int64_t{0};
  auto excess_t =
      limits.tokens_per_minute > 0 ? used_t + tokens - limits.tokens_per_minute : std::int64_t{0};
  if (excess_r > 0 || excess_t > 0)
    return over_limit(excess_r > 0 ? "limit of " + std::to_string(limits.requests_per_minute) +
                                         " requests a minute is reached"
                                   : "limit of " + std::to_string(limits.tokens_per_minute) +
                                         " tokens a minute is reached",
                      k.minute.wait(now, excess_r, excess_t));
  if (limits.tokens_per_day > 0 &&
      k.day_counted + k.day_since + k.day_in_flight + tokens > limits.tokens_per_day)
    return over_limit("limit of " + std::to_string(limits.tokens_per_day) +
                          " tokens a day (UTC) is reached",
                      (utc_day(now) + 1) * 86400 - now);
  k.minute.add(now, requests, tokens);
  k.day_in_flight += tokens;
  return admission{key_id, tokens, now, k.generation};
}

void key_quotas::settle(const admission& admitted, std::int64_t counted) {
  std::lock_guard guard{mutex_};
  auto it = keys_.find(admitted.key_id);
  if (it == keys_.end())
    return;
  auto& k = it->second;
  // Spent whatever limits admitted it: the day counts it.
  k.day_since += counted;
  if (admitted.limits_generation != k.generation)
    return;
  k.day_in_flight -= admitted.tokens;
  // The minute learns what was counted in the second that admitted it, while that second is
  // still in the window; past it, a correction would only free tokens that were never spent.
  k.minute.correct(admitted.at, now_(), counted - admitted.tokens);
}

} // namespace emr

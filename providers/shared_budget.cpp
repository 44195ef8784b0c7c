#include "providers/shared_budget.hpp"

#include <algorithm>
#include <cmath>

namespace emr {

namespace {

/// One measure's bucket refilled to `elapsed_s` later, less what is owed; unlimited: untouched.
double refilled(double level, double elapsed_s, std::uint64_t per_minute, double owed) {
  if (per_minute == 0)
    return level;
  return std::min(shared_capacity(per_minute),
                  level + std::max(0.0, elapsed_s) * shared_refill_per_s(per_minute)) -
         owed;
}

/// Seconds until a bucket at `level` holds `need`.
double seconds_until(double level, double need, std::uint64_t per_minute) {
  if (per_minute == 0 || level >= need)
    return 0;
  return (need - level) / shared_refill_per_s(per_minute);
}

} // namespace

double shared_capacity(std::uint64_t per_minute) {
  return std::max(1.0, static_cast<double>(per_minute) / 10.0);
}

double shared_refill_per_s(std::uint64_t per_minute) {
  auto limit = static_cast<double>(per_minute);
  // A limit of 1 has no room beyond its one-call bucket; it still refills, at its own pace.
  return std::max(limit - shared_capacity(per_minute), std::min(limit, 1.0)) /
         (60.0 + budget_grant_lifetime_s);
}

budget_grant take_grant(budget_row& row, double now_s, const budget_ask& ask,
                        std::size_t replicas) {
  auto rpm = ask.requests_per_minute, tpm = ask.tokens_per_minute;
  auto elapsed = now_s - row.filled_at;
  row.requests_level = refilled(row.requests_level, elapsed, rpm, ask.owed_requests);
  row.tokens_level = refilled(row.tokens_level, elapsed, tpm, ask.owed_tokens);
  row.filled_at = std::max(row.filled_at, now_s);
  budget_grant g;
  auto shares = static_cast<double>(std::max<std::size_t>(replicas, 1));
  if (row.paused_until > now_s) {
    g.paused_for_s = row.paused_until - now_s;
    g.ready_in_s = g.paused_for_s;
  } else {
    // A fair share of a full bucket each, so one busy replica cannot empty it for the others.
    auto requests = static_cast<double>(ask.requests);
    if (rpm > 0)
      requests = std::min({requests, std::max(1.0, std::floor(shared_capacity(rpm) / shares)),
                           std::floor(row.requests_level)});
    if (tpm > 0 && row.tokens_level <= 0)
      requests = 0;
    g.requests = requests >= 1 ? static_cast<std::uint64_t>(requests) : 0;
    if (g.requests > 0 && tpm > 0)
      g.tokens =
          std::min({std::max(ask.tokens, 1.0), shared_capacity(tpm) / shares, row.tokens_level});
    if (rpm > 0)
      row.requests_level -= static_cast<double>(g.requests);
    if (tpm > 0)
      row.tokens_level -= g.tokens;
    if (g.requests == 0)
      g.ready_in_s = std::max(seconds_until(row.requests_level, 1, rpm),
                              seconds_until(row.tokens_level, 1, tpm));
  }
  g.share = 1;
  if (rpm > 0)
    g.share = std::min(g.share, std::max(0.0, row.requests_level / shared_capacity(rpm)));
  if (tpm > 0)
    g.share = std::min(g.share, std::max(0.0, row.tokens_level / shared_capacity(tpm)));
  return g;
}

} // namespace emr

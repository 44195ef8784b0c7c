#include "actors/fleet_allowance.hpp"

#include <algorithm>
#include <cmath>

namespace emr {

std::string_view to_string(budget_sharing sharing) {
  switch (sharing) {
  case budget_sharing::fleet:
    return "fleet";
  case budget_sharing::fleet_offline:
    return "fleet offline";
  case budget_sharing::alone:
    break;
  }
  return "alone";
}

void fleet_allowance::configure(bool in_fleet, std::uint64_t requests_per_minute,
                                std::uint64_t tokens_per_minute) {
  in_fleet_ = in_fleet;
  requests_per_minute_ = requests_per_minute;
  tokens_per_minute_ = tokens_per_minute;
}

budget_sharing fleet_allowance::sharing() const {
  if (!in_fleet_ || !limited())
    return budget_sharing::alone;
  return offline_ ? budget_sharing::fleet_offline : budget_sharing::fleet;
}

bool fleet_allowance::covers(clock_time now) const {
  return now < expires_ && requests_ >= 1 && (tokens_per_minute_ == 0 || tokens_ > 0);
}

clock_time fleet_allowance::next_send(clock_time now) const {
  if (!shared() || covers(now))
    return now;
  if (pending_ || ask_at_ <= now)
    return clock_time::max();
  return ask_at_;
}

void fleet_allowance::forget_before(clock_time now) {
  while (!recent_sends_.empty() && recent_sends_.front() + lifetime_ <= now)
    recent_sends_.pop_front();
}

void fleet_allowance::on_sent(clock_time now, std::uint64_t tokens) {
  if (!shared())
    return;
  // A retry goes without asking, and a grant expired may not be spent: what the grant in hand
  // did not cover is owed.
  if (covers(now))
    --requests_;
  else
    owed_requests_ += 1;
  tokens_ -= static_cast<double>(tokens);
  call_tokens_ = call_tokens_ == 0 ? static_cast<double>(tokens)
                                   : 0.8 * call_tokens_ + 0.2 * static_cast<double>(tokens);
  forget_before(now);
  if (tokens_per_minute_ > 0 && tokens_ < 0) {
    owed_tokens_ += -tokens_;
    tokens_ = 0;
  }
  recent_sends_.push_back(now);
}

std::optional<budget_ask> fleet_allowance::ask(clock_time now, std::string provider,
                                               std::size_t queued_calls, double owed_requests,
                                               double owed_tokens) {
  if (sharing() == budget_sharing::alone || pending_ || now < ask_at_)
    return std::nullopt;
  // Asked only once the grant in hand is spent or expired: units left of a grant may not outlive
  // it, so merging grants would stretch their lifetime, and dropping them would waste them.
  if (queued_calls == 0 || (!offline_ && covers(now)))
    return std::nullopt;
  forget_before(now);
  // As many calls as went in half a lifetime (the rate), or as the queue fills, whichever is
  // more: few enough that they are spent before they expire.
  auto wanted = std::max<std::size_t>({1, (recent_sends_.size() + 1) / 2, queued_calls});
  pending_ = true;
  budget_ask a;
  a.provider = std::move(provider);
  a.requests_per_minute = requests_per_minute_;
  a.tokens_per_minute = tokens_per_minute_;
  a.requests = wanted;
  a.tokens = call_tokens_ * static_cast<double>(wanted);
  a.owed_requests = owed_requests_ + (offline_ ? owed_requests : 0);
  a.owed_tokens = owed_tokens_ + (offline_ ? owed_tokens : 0);
  asked_at_ = now;
  asked_owed_requests_ = owed_requests_;
  asked_owed_tokens_ = owed_tokens_;
  return a;
}

void fleet_allowance::on_grant(clock_time now, const budget_grant& g) {
  pending_ = false;
  replicas_ = std::max<std::size_t>(1, g.replicas);
  if (!g.reachable) {
    on_unreachable(now);
    return;
  }
  offline_ = false;
  // Charged with the ask; what was owed since, while it was pending, goes with the next.
  owed_requests_ -= asked_owed_requests_;
  owed_tokens_ -= asked_owed_tokens_;
  ++grants_taken_;
  lifetime_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>{g.lifetime_s});
  requests_ = g.requests;
  tokens_ = g.tokens;
  // Its life runs from the ask, not from the answer: the ledger granted it somewhere between,
  // and the fleet's limit holds only if no unit is spent later than a lifetime after that.
  expires_ = asked_at_ + lifetime_;
  share_ = g.share;
  auto in = [now](double seconds) {
    // A minute at most: a limit too small to refill says so with an endless wait.
    return now + std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::duration<double>{std::clamp(seconds, 0.0, 60.0)});
  };
  ask_at_ = g.requests == 0 ? in(g.ready_in_s) : now;
  paused_until_ = g.paused_for_s > 0 ? in(g.paused_for_s) : clock_time{};
}

void fleet_allowance::on_unreachable(clock_time now) {
  pending_ = false;
  offline_ = true;
  requests_ = 0;
  tokens_ = 0;
  ask_at_ = now + retry_unreachable;
}

void fleet_allowance::pause(clock_time until) {
  paused_until_ = std::max(paused_until_, until);
  ask_at_ = std::max(ask_at_, until);
  requests_ = 0;
  tokens_ = 0;
}

std::uint64_t fleet_allowance::requests_in_hand(clock_time now) const {
  return covers(now) ? requests_ : 0;
}

} // namespace emr

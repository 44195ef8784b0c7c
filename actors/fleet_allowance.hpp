#pragma once
// A batcher's side of its provider's fleet-wide budget (providers/shared_budget.hpp): the grant
// it holds, when to ask for the next, and whether the ledger is out of reach, when the batcher
// spends a 1/N share of the limit on its own. Pure logic on an injected clock.
//
// Only a fleet's batchers for a provider whose limits the operator set share: a limit learned
// from the provider's headers already counts every replica's calls, and one learned from 429s is
// learned by each replica from its own share.

#include "actors/messages.hpp"

#include <deque>

namespace emr {

enum class budget_sharing : std::uint8_t { alone, fleet, fleet_offline };
std::string_view to_string(budget_sharing sharing);

class fleet_allowance {
public:
  /// `in_fleet`: this replica has a fleet to share with. Limits of 0 are not set.
  void configure(bool in_fleet, std::uint64_t requests_per_minute, std::uint64_t tokens_per_minute);
  budget_sharing sharing() const;
  bool shared() const { return sharing() == budget_sharing::fleet; }

  /// When a call may go as far as the fleet's budget says: at once alone, offline or with a
  /// grant in hand; else not before an answer to an ask, pending or due now (the answer wakes
  /// the batcher: clock_time::max()), or when the next ask is due.
  clock_time next_send(clock_time now) const;
  /// A call carrying `tokens` went.
  void on_sent(clock_time now, std::uint64_t tokens);

  /// The ask to send now, if one is due: calls are queued, the grant in hand does not cover the
  /// next one, and no ask is pending. `queued_calls`: the calls the queue would fill now.
  /// `owed_*`: what the batcher spent of its own share while offline, charged to the shared
  /// bucket once it answers.
  std::optional<budget_ask> ask(clock_time now, std::string provider, std::size_t queued_calls,
                                double owed_requests, double owed_tokens);
  /// The ledger's answer to the pending ask.
  void on_grant(clock_time now, const budget_grant& grant);
  /// The pending ask got no answer.
  void on_unreachable(clock_time now);
  /// The fleet pauses the provider until `until`: the grant in hand is not spent (the pause
  /// may outlast it) and no ask goes before then.
  void pause(clock_time until);

  /// Replicas in the fleet as last heard (1 alone).
  std::size_t replicas() const { return replicas_; }
  /// What the shared bucket held after the latest grant, as a share of its capacity.
  double share() const { return in_fleet_ && limited() ? share_ : 1.0; }
  /// The fleet's pause after a 429, as the latest grant said.
  clock_time paused_until() const { return paused_until_; }
  std::uint64_t requests_in_hand(clock_time now) const;
  std::uint64_t grants_taken() const { return grants_taken_; }

  /// How long after an ask with no answer the next one goes.
  static constexpr std::chrono::seconds retry_unreachable{1};

private:
  bool limited() const { return requests_per_minute_ > 0 || tokens_per_minute_ > 0; }
  bool covers(clock_time now) const;
  void forget_before(clock_time now);

  bool in_fleet_ = false;
  std::uint64_t requests_per_minute_ = 0, tokens_per_minute_ = 0;
  bool offline_ = false;
  bool pending_ = false;
  std::uint64_t requests_ = 0; ///< of the grant in hand
  double tokens_ = 0;          ///< may go below zero: a call's tokens are known once it is cut
  double owed_requests_ = 0, owed_tokens_ = 0; ///< spent beyond a grant, charged with the next ask
  double call_tokens_ = 0;                     ///< a call's tokens, on average of late
  clock_time expires_{};
  clock_time asked_at_{};                                  ///< of the pending (or latest) ask
  double asked_owed_requests_ = 0, asked_owed_tokens_ = 0; ///< what it charged
  clock_time ask_at_{}; ///< not before: the ledger said when the bucket holds a call again
  std::chrono::nanoseconds lifetime_{};
  clock_time paused_until_{};
  double share_ = 1;
  std::size_t replicas_ = 1;
  std::uint64_t grants_taken_ = 0;
  std::deque<clock_time> recent_sends_; ///< within a grant's lifetime: the rate to ask for
};

} // namespace emr

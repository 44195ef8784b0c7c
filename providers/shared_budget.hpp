#pragma once
// A provider's rate limits shared by a fleet of replicas. Each provider with an operator-set limit
// has one bucket per measure (requests, tokens) in the shared store; a replica takes small grants
// from it and spends them on its own, so the database is on one call in many, not on every
// call's path.
//
// Why the fleet stays within the limit: a bucket holds at most a tenth of the minute's limit and
// refills at what is left over 60 s plus a grant's lifetime. A replica spends a grant within its
// lifetime or drops it, so what the fleet sends in any 60 s window was granted within 60 s plus
// one lifetime: at most a tenth plus the refill of that time, which is the limit.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace emr {

/// How long a replica may spend what it was granted.
inline constexpr double budget_grant_lifetime_s = 2.0;
/// A replica not seen for this long has left the fleet.
inline constexpr double replica_silence_s = 5.0;

/// What a replica asks of a provider's shared budget.
struct budget_ask {
  std::string provider;
  std::uint64_t requests_per_minute = 0; ///< the operator's limits; 0: not shared
  std::uint64_t tokens_per_minute = 0;
  std::uint64_t requests = 1; ///< calls it wants to send soon
  double tokens = 0;          ///< tokens those calls carry
  /// Spent without a grant, to be taken from the bucket first: tokens beyond a grant (a call's
  /// size is known only once it is cut), and what the replica spent on its own while the
  /// database was out of reach.
  double owed_requests = 0, owed_tokens = 0;
};

/// What it got.
struct budget_grant {
  std::uint64_t requests = 0;
  double tokens = 0;
  double lifetime_s = budget_grant_lifetime_s;
  /// Nothing granted: when to ask again.
  double ready_in_s = 0;
  /// The provider refused a replica with 429 and named a wait: nobody sends until it is over.
  double paused_for_s = 0;
  /// What the shared bucket holds after this grant, as a share of its capacity (1: unlimited).
  double share = 1;
  /// False when the shared store could not be asked: nothing is granted, and the replica
  /// spends its fair share of the limit on its own until it can be again.
  bool reachable = true;
  /// Replicas in the fleet, this one included, as last seen.
  std::size_t replicas = 1;
};

/// One provider's row: both buckets at `filled_at` (the database's clock, in seconds).
struct budget_row {
  double requests_level = 0, tokens_level = 0, filled_at = 0, paused_until = 0;
};

/// The bucket arithmetic: refills `row` to `now_s`, takes what is owed, and grants what `ask`
/// wants of what is left, at most a fair share of a bucket among `replicas`.
budget_grant take_grant(budget_row& row, double now_s, const budget_ask& ask, std::size_t replicas);

/// A bucket's capacity and refill per second for a limit of `per_minute`.
double shared_capacity(std::uint64_t per_minute);
double shared_refill_per_s(std::uint64_t per_minute);

/// Where grants come from: the shared store (storage/fleet_ledger.hpp), a stand-in in tests.
/// Blocking; its user gives it a thread of its own. Each call throws when the store cannot be
/// reached.
class budget_ledger {
public:
  virtual ~budget_ledger() = default;
  /// Says this replica is alive; returns how many are (itself included).
  virtual std::size_t heartbeat() = 0;
  virtual budget_grant grant(const budget_ask& ask) = 0;
  /// The provider refused with 429 and asked for `seconds`: every replica waits them out.
  virtual void pause(const std::string& provider, double seconds) = 0;
  /// The providers paused now, with the seconds left of each pause.
  virtual std::vector<std::pair<std::string, double>> pauses() = 0;
};

} // namespace emr

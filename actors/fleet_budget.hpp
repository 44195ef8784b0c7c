#pragma once
// The fleet budget actor: one per replica of a fleet. It owns the replica's connection to the
// budget ledger, answers the batchers' asks for grants, spreads a provider's 429 pause to the
// fleet, and says every second that this replica is alive, which is how each replica knows its
// fair share of a limit when the ledger is out of reach.

#include "actors/actors.hpp"

#include <map>
#include <memory>

namespace emr {

struct fleet_budget_state {
  std::unique_ptr<budget_ledger> ledger;
  std::chrono::milliseconds heartbeat{1000};
  std::size_t replicas = 1; ///< as last counted
  bool reachable = true;    ///< as last found, so an outage is logged once, not per ask
  /// Each provider's batcher, as its latest ask came from, to be told of a pause.
  std::map<std::string, caf::actor_addr> batchers;

  static inline const char* name = "fleet_budget";

  /// Notes whether the ledger answered, logging each change.
  void reached(bool answered, const char* why);
};

/// Spawn detached: every message blocks on the ledger.
fleet_budget_actor::behavior_type
fleet_budget(fleet_budget_actor::stateful_pointer<fleet_budget_state> self,
             std::unique_ptr<budget_ledger> ledger, std::chrono::milliseconds heartbeat);

} // namespace emr

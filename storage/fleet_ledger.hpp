#pragma once
// A fleet's provider budgets and members in PostgreSQL: the shared buckets of
// providers/shared_budget.hpp in `provider_budgets`, one row per provider, and each replica's
// heartbeat in `fleet_replicas`. Grants are taken under the row's lock, on the database's clock,
// so replicas whose clocks disagree still share one bucket.

#include "providers/shared_budget.hpp"
#include "storage/postgres_connection.hpp"

#include <cstdint>
#include <string>

namespace emr {

/// The ledger on its own connection.
class fleet_ledger final : public budget_ledger {
public:
  /// `replica`: this replica's name in the fleet, unique among them.
  fleet_ledger(std::string url, std::string replica);
  /// Leaves the fleet, so the others' fair shares grow at once.
  ~fleet_ledger() override;
  fleet_ledger(const fleet_ledger&) = delete;
  fleet_ledger& operator=(const fleet_ledger&) = delete;

  std::size_t heartbeat() override;
  budget_grant grant(const budget_ask& ask) override;
  /// Also tells every replica at once (change_topic::pauses), not only at its next grant.
  void pause(const std::string& provider, double seconds) override;
  std::vector<std::pair<std::string, double>> pauses() override;

private:
  pg::connection db_;
  std::string replica_;
  std::size_t replicas_ = 1;
};

} // namespace emr

#pragma once
// What another replica changed in the store a fleet shares, applied here: keys it revoked are
// forgotten by this replica's key cache, and providers it added, changed, disabled or removed
// are started, restarted or stopped in this replica's directory.

#include "actors/directory.hpp"
#include "http/caller_auth.hpp"
#include "http/key_quotas.hpp"
#include "storage/store.hpp"

#include <string>
#include <vector>

namespace emr {

/// The directory changes that make what runs match what is stored.
struct provider_plan {
  std::vector<provider_spec> start; ///< enabled, and new or changed
  std::vector<std::string> stop;    ///< disabled or no longer stored, and running
};
provider_plan plan_providers(const std::vector<provider_record>& stored,
                             const std::vector<provider_spec>& running);

class replica_sync {
public:
  replica_sync(store& db, caller_auth& auth, key_quotas& quotas, provider_directory& directory)
      : db_(db), auth_(auth), quotas_(quotas), directory_(directory) {}

  /// Each logs and rethrows a store failure.
  void keys_changed();
  void providers_changed();

private:
  store& db_;
  caller_auth& auth_;
  key_quotas& quotas_;
  provider_directory& directory_;
};

} // namespace emr

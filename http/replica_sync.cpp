#include "http/replica_sync.hpp"

#include "http/provider_records.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace emr {

provider_plan plan_providers(const std::vector<provider_record>& stored,
                             const std::vector<provider_spec>& running) {
  provider_plan plan;
  auto runs = [&](const std::string& name) {
    return std::any_of(running.begin(), running.end(),
                       [&](const provider_spec& s) { return s.name == name; });
  };
  for (const auto& record : stored) {
    // As at start-up: a record this build cannot run is left alone (`emr providers list` says
    // why), a disabled one does not run.
    if (check_provider(record))
      continue;
    if (!record.enabled) {
      if (runs(record.name))
        plan.stop.push_back(record.name);
      continue;
    }
    auto spec = to_spec(record);
    if (std::find(running.begin(), running.end(), spec) == running.end())
      plan.start.push_back(std::move(spec));
  }
  for (const auto& spec : running) {
    bool kept = std::any_of(stored.begin(), stored.end(),
                            [&](const provider_record& r) { return r.name == spec.name; });
    if (!kept)
      plan.stop.push_back(spec.name);
  }
  return plan;
}

void replica_sync::keys_changed() {
  try {
    auto keys = db_.keys();
    auth_.forget_revoked(keys);
    quotas_.load(keys);
  } catch (const storage_error& e) {
    spdlog::warn("cannot read the keys other replicas changed: {}", e.what());
    throw;
  }
}

void replica_sync::providers_changed() {
  try {
    auto plan = plan_providers(db_.providers(), directory_.specs());
    for (const auto& spec : plan.start) {
      spdlog::info("provider {} changed in the shared store: (re)starting it", spec.name);
      directory_.start(spec);
    }
    for (const auto& name : plan.stop) {
      spdlog::info("provider {} was removed from the shared store: stopping it", name);
      directory_.stop(name);
    }
  } catch (const storage_error& e) {
    spdlog::warn("cannot read the providers other replicas changed: {}", e.what());
    throw;
  }
}

} // namespace emr

// plan_providers: what another replica changed in the shared store, as the directory changes
// that make this replica run the same providers.

#include "http/provider_records.hpp"
#include "http/replica_sync.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace {

provider_record stored(const std::string& name, bool enabled = true) {
  provider_record r;
  r.name = name;
  r.type = "voyage";
  r.endpoint = "http://127.0.0.1:9/v1/embeddings";
  r.model = "voyage-3.5";
  r.api_key_env = "VOYAGE_API_KEY";
  r.enabled = enabled;
  return r;
}

std::vector<std::string> names(const std::vector<provider_spec>& specs) {
  std::vector<std::string> out;
  for (const auto& s : specs)
    out.push_back(s.name);
  return out;
}

TEST(plan_providers, what_already_runs_as_stored_is_left_alone) {
  auto plan =
      plan_providers({stored("a"), stored("b")}, {to_spec(stored("a")), to_spec(stored("b"))});
  EXPECT_TRUE(plan.start.empty());
  EXPECT_TRUE(plan.stop.empty());
}

TEST(plan_providers, new_and_changed_providers_start_and_removed_ones_stop) {
  auto changed = stored("changed");
  changed.requests_per_minute = 600;
  auto plan = plan_providers(
      {stored("kept"), stored("new"), changed},
      {to_spec(stored("kept")), to_spec(stored("changed")), to_spec(stored("removed"))});
  EXPECT_EQ(names(plan.start), (std::vector<std::string>{"new", "changed"}));
  EXPECT_EQ(plan.start[1].requests_per_minute, 600u) << "restarted with what is stored";
  EXPECT_EQ(plan.stop, (std::vector<std::string>{"removed"}));
}

TEST(plan_providers, a_disabled_provider_stops_if_it_runs_and_never_starts) {
  auto plan = plan_providers({stored("disabled", false), stored("off", false)},
                             {to_spec(stored("disabled"))});
  EXPECT_TRUE(plan.start.empty());
  EXPECT_EQ(plan.stop, (std::vector<std::string>{"disabled"}));
}

TEST(plan_providers, a_record_this_build_cannot_run_is_left_alone) {
  auto unknown = stored("odd");
  unknown.type = "no-such-type";
  auto plan = plan_providers({unknown}, {});
  EXPECT_TRUE(plan.start.empty());
  EXPECT_TRUE(plan.stop.empty());
}

} // namespace
} // namespace emr

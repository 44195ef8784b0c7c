#pragma once
// The HTTP surface, one installer per group of routes.

#include "http/app.hpp"

#include <mutex>

namespace emr {

class route_table;

/// POST /v1/embeddings and POST /v1/embeddings/batch.
void install_embedding_routes(route_table& routes, app& a);
/// Admin changes to stored records, one at a time for each kind. A change reads a record, writes
/// it whole and then makes what runs match it: two at once on one record would each write what
/// they read, the later undoing the earlier (both answered 200), and could leave the running
/// provider or quota unlike the stored one. Changes are rare, so one lock a kind costs nothing.
struct admin_changes {
  std::mutex providers;
  std::mutex keys;
};

/// /admin/*: keys, providers, config, stats.
void install_admin_routes(route_table& routes, app& a, admin_changes& changes);
/// GET /health, /health/providers, /status.
void install_public_routes(route_table& routes, app& a);
/// GET /metrics (Prometheus text).
void install_metrics_route(route_table& routes, app& a);

/// Runs one caller job through a fresh request actor and waits for its answer.
caller_outcome run_job(app& a, caller_job job);

/// The actors' own numbers.
struct actors_stats {
  std::vector<batcher_stats> batchers; ///< one per provider that answered in time
  health_stats health;
};

/// Asks every batcher and the health actor for their own numbers (through messages).
actors_stats collect_stats(app& a);

} // namespace emr

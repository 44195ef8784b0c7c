#pragma once
// The series /metrics exports: the described stats' fields that name a metric (stat_field.hpp),
// per provider where they are a provider's, and a few series derived from them. The same list
// renders the Prometheus text and the metric table in docs/api.md.

#include "actors/actor_stats.hpp"
#include "actors/embedding_cache.hpp"
#include "http/caller_auth.hpp"
#include "http/caller_metrics.hpp"
#include "storage/store.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace emr {

struct metric_sample {
  std::string suffix; ///< a histogram's `_bucket`, `_sum` or `_count`; empty otherwise
  std::string labels; ///< `name="value",...`, escaped
  std::string value;
};

struct metric_family {
  std::string_view name;
  metric_type type = metric_type::gauge;
  std::string_view help;
  std::vector<std::string_view> labels; ///< the labels its samples carry (a histogram's `le` aside)
  std::vector<metric_sample> samples;
};

/// Everything /metrics reports on.
struct metric_sources {
  std::vector<batcher_stats> batchers;
  health_stats health;
  caller_stats callers;
  auth_stats auth;
  cache_stats cache;
  std::int64_t request_actors = 0;
  /// Per caller key since start, the busiest few (key_usage_meter::busiest): key_id 0 sums the
  /// others, labelled `other`.
  std::vector<key_usage_row> keys;
};

/// How many caller keys /metrics names; the others are summed under key="other".
inline constexpr std::size_t metric_keys = 32;

/// Every family, in a fixed order, each present even when it has no samples yet.
std::vector<metric_family> metric_families(const metric_sources& sources);

/// Prometheus' text exposition format, version 0.0.4.
std::string prometheus_text(const std::vector<metric_family>& families);

/// The Markdown table of docs/api.md: one row per family, its type, labels and help.
std::string metric_table(const std::vector<metric_family>& families);

} // namespace emr

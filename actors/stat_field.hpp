#pragma once
// How a field of some part's stats is shown. Each stats struct lists its fields once, with
// `describe(stats, visit)`; /admin/stats, /metrics and the metric table in docs/api.md are all
// made from those lists, so a renamed field is a compile error, not a series that quietly
// disappears.

#include <string_view>

namespace emr {

enum class metric_type { none, counter, gauge, histogram };

/// How one field of an actor's stats is shown.
struct stat_field {
  std::string_view key;                 ///< its name in /admin/stats
  metric_type type = metric_type::none; ///< how /metrics exports it; none: /admin/stats only
  std::string_view metric{};            ///< its Prometheus name
  std::string_view help{};
  /// A field holding several counters (a described struct): the label naming each of them.
  std::string_view label{};
};

/// Stats whose fields `describe(stats, visit)` lists, calling `visit(value, stat_field)` for each.
template <class T>
concept described_stats = requires(const T& t) {
  describe(t, [](const auto&, const stat_field&) {});
};

} // namespace emr

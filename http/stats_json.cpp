#include "http/stats_json.hpp"

namespace emr {

boost::json::object to_json(const histogram& h) {
  boost::json::array buckets;
  for (std::size_t i = 0; i < h.upper_bounds().size(); ++i)
    buckets.push_back(boost::json::array{h.upper_bounds()[i], h.cumulative_counts()[i]});
  return boost::json::object{
      {"buckets", std::move(buckets)}, {"count", h.count()}, {"sum", h.sum()}};
}

boost::json::object to_json(const health_stats& s) {
  boost::json::object out;
  for (const auto& [provider, stats] : s.providers)
    out[provider] = to_json(stats);
  return out;
}

} // namespace emr

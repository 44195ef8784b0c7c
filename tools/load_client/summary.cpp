// Counts and latency percentiles of a run; see summarize() in load_client.hpp.

#include "tools/load_client.hpp"

#include <algorithm>
#include <cmath>

namespace emr::load {

summary summarize(const std::vector<result>& results, double wall_s) {
  summary s;
  s.total = results.size();
  s.wall_s = wall_s;
  std::vector<double> latencies;
  latencies.reserve(results.size());
  for (const auto& r : results) {
    latencies.push_back(r.latency_ms);
    ++s.status_counts[r.status];
    s.retries += static_cast<std::size_t>(r.retries);
    if (r.vectors_ok)
      ++s.ok;
    else if (r.status == 200)
      ++s.wrong_vectors;
    else if (r.status == 0)
      ++s.transport_errors;
  }
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    const auto rank = [&](double q) {
      const auto n = static_cast<double>(latencies.size());
      const auto k = static_cast<std::size_t>(std::max(1.0, std::ceil(q * n)));
      return latencies[std::min(k, latencies.size()) - 1];
    };
    s.p50_ms = rank(0.50);
    s.p95_ms = rank(0.95);
    s.p99_ms = rank(0.99);
    s.max_ms = latencies.back();
  }
  s.throughput_rps = wall_s > 0 ? static_cast<double>(s.total) / wall_s : 0;
  return s;
}

} // namespace emr::load

#pragma once
// What callers saw, counted where it happens: the HTTP threads that answer them.

#include "actors/histogram.hpp"

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace emr {

/// Callers' answers so far, for /metrics.
struct caller_stats {
  struct answers {
    std::string provider; ///< "" before routing
    int status = 0;
    std::uint64_t count = 0;
  };
  std::vector<answers> requests; ///< by provider, then status
  histogram latency_seconds{histogram::latency_bounds()};
  std::uint64_t rate_limited_passed_on = 0;
};

class caller_metrics {
public:
  /// One answered caller: the provider that served it (or "" before routing), status, latency.
  void record(const std::string& provider, int status, double seconds);
  caller_stats stats() const;

private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  histogram latency_{histogram::latency_bounds()};
  std::uint64_t rate_limited_ = 0;
};

} // namespace emr

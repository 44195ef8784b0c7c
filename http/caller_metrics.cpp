#include "http/caller_metrics.hpp"

namespace emr {

void caller_metrics::record(const std::string& provider, int status, double seconds) {
  std::lock_guard guard{mutex_};
  ++requests_[{provider, status}];
  latency_.observe(seconds);
  rate_limited_ += status == 429;
}

caller_stats caller_metrics::stats() const {
  std::lock_guard guard{mutex_};
  caller_stats s;
  for (const auto& [key, count] : requests_)
    s.requests.push_back({key.first, key.second, count});
  s.latency_seconds = latency_;
  s.rate_limited_passed_on = rate_limited_;
  return s;
}

} // namespace emr

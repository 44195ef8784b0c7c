#pragma once
// What callers saw, counted where it happens: the HTTP threads that answer them.

#include "actors/histogram.hpp"

#include <boost/json/object.hpp>

#include <map>
#include <mutex>
#include <string>

namespace emr {

class caller_metrics {
public:
  /// One answered caller: the provider that served it (or "" before routing), status, latency.
  void record(const std::string& provider, int status, double seconds);
  /// `{"requests":[{"provider","status","count"}], "latency_seconds": histogram,
  /// "rate_limited_passed_on": n}`
  boost::json::object to_json() const;

private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  histogram latency_{histogram::latency_bounds()};
  std::uint64_t rate_limited_ = 0;
};

} // namespace emr

#include "http/caller_metrics.hpp"

namespace json = boost::json;

namespace emr {

void caller_metrics::record(const std::string& provider, int status, double seconds) {
  std::lock_guard guard{mutex_};
  ++requests_[{provider, status}];
  latency_.observe(seconds);
  rate_limited_ += status == 429;
}

json::object caller_metrics::to_json() const {
  std::lock_guard guard{mutex_};
  json::array requests;
  for (const auto& [key, count] : requests_)
    requests.push_back(
        json::object{{"provider", key.first}, {"status", key.second}, {"count", count}});
  return json::object{{"requests", std::move(requests)},
                      {"latency_seconds", latency_.to_json()},
                      {"rate_limited_passed_on", rate_limited_}};
}

} // namespace emr

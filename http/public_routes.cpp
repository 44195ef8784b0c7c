// Unauthenticated routes: liveness, per-provider health, and a public status summary.

#include "http/exchange.hpp"
#include "http/route_table.hpp"
#include "http/routes.hpp"
#include "http/stats_json.hpp"

#include <boost/json.hpp>

namespace json = boost::json;

namespace emr {

namespace {

std::int64_t uptime_s(const app& a) {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                          a.started)
      .count();
}

} // namespace

void install_public_routes(route_table& routes, app& a) {
  routes.get("/health", [&a](const httplib::Request&, httplib::Response& res) {
    auto health = collect_stats(a).health;
    bool any_serving = health.providers.empty();
    for (const auto& [name, h] : health.providers)
      if (h.state != "sin-binned" && h.state != "failed")
        any_serving = true;
    send_json(res, any_serving ? 200 : 503,
              json::serialize(json::object{{"status", any_serving ? "ok" : "unavailable"}}));
  });
  routes.get("/health/providers", [&a](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200,
              json::serialize(json::object{{"providers", to_json(collect_stats(a).health)}}));
  });
  routes.get("/status", [&a](const httplib::Request&, httplib::Response& res) {
    json::object o{{"version", EMR_VERSION},
                   {"uptime_s", uptime_s(a)},
                   {"providers", a.directory.specs().size()},
                   {"requests_served", a.requests_served.load()}};
    send_json(res, 200, json::serialize(o));
  });
}

} // namespace emr

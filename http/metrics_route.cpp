// GET /metrics: Prometheus text, made from the same typed stats /admin/stats shows, so the two
// cannot disagree.

#include "actors/request.hpp"
#include "http/exchange.hpp"
#include "http/metric_families.hpp"
#include "http/route_table.hpp"
#include "http/routes.hpp"

namespace emr {

void install_metrics_route(route_table& routes, app& a) {
  routes.get("/metrics", [&a](const httplib::Request&, httplib::Response& res) {
    auto actors = collect_stats(a);
    auto families = metric_families({std::move(actors.batchers), std::move(actors.health),
                                     a.callers.stats(), a.auth.stats(), a.cache->stats(),
                                     live_request_actors(), a.usage.busiest(metric_keys)});
    res.status = 200;
    res.set_content(prometheus_text(families), "text/plain; version=0.0.4; charset=utf-8");
  });
}

} // namespace emr

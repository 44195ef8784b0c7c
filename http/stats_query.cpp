// Asks the actors for their numbers through messages, from an HTTP thread.

#include "http/routes.hpp"

#include <boost/json.hpp>

#include <future>

namespace json = boost::json;

namespace emr {

namespace {

struct stats_gathering {
  json::array providers;
  json::object health;
  std::size_t pending = 0;
  std::shared_ptr<std::promise<json::object>> out;
  void finish_one() {
    if (--pending == 0)
      out->set_value(
          json::object{{"providers", std::move(providers)}, {"health", std::move(health)}});
  }
};

void gather(caf::event_based_actor* self, std::vector<batcher_actor> batchers, health_actor health,
            std::shared_ptr<std::promise<json::object>> out) {
  auto st = std::make_shared<stats_gathering>();
  st->out = std::move(out);
  st->pending = batchers.size() + 1;
  constexpr auto timeout = std::chrono::seconds{2};
  for (auto& b : batchers)
    self->request(b, timeout, atom::status::value)
        .then(
            [st](status_report& r) {
              st->providers.push_back(std::move(r.body));
              st->finish_one();
            },
            [st](caf::error&) { st->finish_one(); });
  self->request(health, timeout, atom::status::value)
      .then(
          [st](status_report& r) {
            st->health = std::move(r.body);
            st->finish_one();
          },
          [st](caf::error&) { st->finish_one(); });
}

} // namespace

json::object collect_stats(app& a) {
  auto out = std::make_shared<std::promise<json::object>>();
  auto future = out->get_future();
  // Hidden: a gatherer still exiting after it answered must not show in the next query's count of
  // running actors, which operators watch for leaks.
  a.system.spawn<caf::hidden>(gather, a.directory.batchers(), a.directory.health(), out);
  if (future.wait_for(std::chrono::seconds{5}) != std::future_status::ready)
    return json::object{{"providers", json::array{}}, {"health", json::object{}}};
  return future.get();
}

} // namespace emr

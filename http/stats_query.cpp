// Asks the actors for their numbers through messages, from an HTTP thread.

#include "http/routes.hpp"

#include <future>

namespace emr {

namespace {

struct stats_gathering {
  actors_stats stats;
  std::size_t pending = 0;
  std::shared_ptr<std::promise<actors_stats>> out;
  void finish_one() {
    if (--pending == 0)
      out->set_value(std::move(stats));
  }
};

void gather(caf::event_based_actor* self, std::vector<batcher_actor> batchers, health_actor health,
            std::shared_ptr<std::promise<actors_stats>> out) {
  auto st = std::make_shared<stats_gathering>();
  st->out = std::move(out);
  st->pending = batchers.size() + 1;
  constexpr auto timeout = std::chrono::seconds{2};
  for (auto& b : batchers)
    self->request(b, timeout, atom::status::value)
        .then(
            [st](batcher_stats& s) {
              st->stats.batchers.push_back(std::move(s));
              st->finish_one();
            },
            [st](caf::error&) { st->finish_one(); });
  self->request(health, timeout, atom::status::value)
      .then(
          [st](health_stats& s) {
            st->stats.health = std::move(s);
            st->finish_one();
          },
          [st](caf::error&) { st->finish_one(); });
}

} // namespace

actors_stats collect_stats(app& a) {
  auto out = std::make_shared<std::promise<actors_stats>>();
  auto future = out->get_future();
  // Hidden: a gatherer still exiting after it answered must not show in the next query's count of
  // running actors, which operators watch for leaks.
  a.system.spawn<caf::hidden>(gather, a.directory.batchers(), a.directory.health(), out);
  if (future.wait_for(std::chrono::seconds{5}) != std::future_status::ready)
    return {};
  return future.get();
}

} // namespace emr

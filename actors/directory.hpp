#pragma once
// The running providers: which batcher serves which name. HTTP threads read it on every
// request; admin calls change it without a restart. It also keeps what it spawned running: a
// batcher or the health actor that dies abnormally (an exception, a kill) is restarted at once,
// within a restart limit.

#include "actors/batcher.hpp"
#include "actors/health.hpp"
#include "actors/request.hpp"
#include "actors/restart_limit.hpp"

#include <memory>

namespace emr {

class provider_directory {
public:
  provider_directory(caf::actor_system& system, batcher_settings batching, health_settings health,
                     restart_settings restarts);
  ~provider_directory();

  /// Starts a batcher for an enabled provider at once; a disabled one is only remembered. A
  /// provider already running is replaced: new callers reach the fresh batcher, the old drains.
  void start(const provider_spec& spec);
  /// Forgets the provider; its batcher answers everything it queued, then exits.
  void stop(const std::string& name);
  /// Shutdown, first step: every batcher sends what it holds without waiting for company.
  void hurry_all();
  /// Shutdown, last step: every batcher answers what it has and exits, then the health actor.
  void drain_all();

  /// A provider whose batcher died more often than the restart limit allows keeps its route to
  /// the dead batcher, so its callers get a 502 naming it at once (and the health actor reports
  /// it failed) until an operator adds or enables it again.
  std::optional<provider_route> route(std::string_view name) const;
  std::vector<provider_route> routes() const;
  std::vector<provider_spec> specs() const;
  std::vector<batcher_actor> batchers() const;
  health_actor health() const;

private:
  /// What the directory knows, shared with the exit watchers of the actors it spawned: an actor
  /// may die (and be restarted) while the directory itself is being destroyed.
  struct registry;
  std::shared_ptr<registry> registry_;
};

} // namespace emr

#pragma once
// The running providers: which batcher serves which name. HTTP threads read it on every
// request; admin calls change it without a restart.

#include "actors/batcher.hpp"
#include "actors/request.hpp"

#include <map>
#include <mutex>
#include <shared_mutex>

namespace emr {

class provider_directory {
public:
  provider_directory(caf::actor_system& system, batcher_settings settings, health_actor health);
  ~provider_directory();

  /// Starts a batcher for an enabled provider at once; a disabled one is only remembered. A
  /// provider already running is replaced: new callers reach the fresh batcher, the old drains.
  void start(const provider_spec& spec);
  /// Forgets the provider; its batcher answers everything it queued, then exits.
  void stop(const std::string& name);
  /// Shutdown, first step: every batcher sends what it holds without waiting for company.
  void hurry_all();
  /// Shutdown, last step: every batcher answers what it has and exits.
  void drain_all();

  std::optional<provider_route> route(std::string_view name) const;
  std::vector<provider_route> routes() const;
  std::vector<provider_spec> specs() const;
  std::vector<batcher_actor> batchers() const;
  const batcher_settings& settings() const { return settings_; }
  health_actor health() const { return health_; }

private:
  struct entry {
    provider_spec spec;
    provider_route route;
  };
  entry make_entry(const provider_spec& spec);
  void drain(const entry& e);

  caf::actor_system& system_;
  batcher_settings settings_;
  health_actor health_;
  mutable std::shared_mutex mutex_;  ///< every caller reads; only admin calls write
  std::map<std::string, entry, std::less<>> entries_;
};

} // namespace emr

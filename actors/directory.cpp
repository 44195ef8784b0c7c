#include "actors/directory.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <mutex>
#include <shared_mutex>

namespace emr {

struct provider_directory::registry : std::enable_shared_from_this<registry> {
  struct entry {
    provider_spec spec;
    provider_route route;
    restart_limit restarts;
    bool failed = false; ///< its batcher died past the restart limit and stays down
  };

  registry(caf::actor_system& system, batcher_settings batching, health_settings health_config,
           restart_settings restarts)
      : system(system), batching(batching), health_config(health_config), restarts(restarts),
        health_restarts(restarts) {}

  caf::actor_system& system;
  const batcher_settings batching;
  const health_settings health_config;
  const restart_settings restarts;
  mutable std::shared_mutex mutex; ///< every caller reads; admin calls and restarts write
  std::map<std::string, entry, std::less<>> entries;
  health_actor health;
  restart_limit health_restarts;

  // Under the write lock, so that a health actor restarted meanwhile is never missed.
  entry make_entry(const provider_spec& spec);
  // Outside the lock: the watcher of an actor that is already dead runs at once, in this thread.
  void watch(const std::string& provider, const batcher_actor& batcher);
  void watch(const health_actor& health);
  void on_batcher_exit(const std::string& provider, const caf::actor_addr& dead,
                       const caf::error& reason);
  void on_health_exit(const caf::actor_addr& dead, const caf::error& reason);
  static void drain(const entry& e);
};

provider_directory::registry::entry
provider_directory::registry::make_entry(const provider_spec& spec) {
  entry e{spec,
          provider_route{spec.name,
                         spec.type,
                         spec.model,
                         spec.max_batch,
                         {},
                         {},
                         make_provider(spec),
                         cache_scope(spec)},
          restart_limit{restarts}};
  e.route.limits = model_limits(spec, *e.route.adapter, spec.model);
  if (spec.enabled)
    e.route.batcher =
        system.spawn(batcher, spec, batching, health, real_factories(spec, batching.upstream));
  return e;
}

void provider_directory::registry::watch(const std::string& provider,
                                         const batcher_actor& batcher) {
  if (!batcher)
    return;
  caf::actor_cast<caf::abstract_actor*>(batcher)->attach_functor(
      [self = weak_from_this(), provider, dead = batcher.address()](const caf::error& reason) {
        if (auto r = self.lock())
          r->on_batcher_exit(provider, dead, reason);
      });
}

void provider_directory::registry::watch(const health_actor& health) {
  caf::actor_cast<caf::abstract_actor*>(health)->attach_functor(
      [self = weak_from_this(), dead = health.address()](const caf::error& reason) {
        if (auto r = self.lock())
          r->on_health_exit(dead, reason);
      });
}

void provider_directory::registry::on_batcher_exit(const std::string& provider,
                                                   const caf::actor_addr& dead,
                                                   const caf::error& reason) {
  if (!stopped_abnormally(reason))
    return;
  batcher_actor fresh;
  {
    std::lock_guard guard{mutex};
    auto it = entries.find(provider);
    // A batcher replaced or removed meanwhile has nothing left to restart.
    if (it == entries.end() || it->second.route.batcher.address() != dead)
      return;
    auto& e = it->second;
    auto why = system.render(reason);
    if (!e.restarts.allow(system.clock().now())) {
      e.failed = true;
      spdlog::error(
          "provider {}: its batcher stopped ({}) more than {} times within {} s; it stays "
          "down until the provider is added or enabled again",
          provider, why, restarts.max_restarts, restarts.window.count());
      return;
    }
    spdlog::warn("provider {}: its batcher stopped ({}); restarting it", provider, why);
    e.route.batcher = fresh =
        system.spawn(batcher, e.spec, batching, health, real_factories(e.spec, batching.upstream));
  }
  watch(provider, fresh);
}

void provider_directory::registry::on_health_exit(const caf::actor_addr& dead,
                                                  const caf::error& reason) {
  if (!stopped_abnormally(reason))
    return;
  health_actor fresh;
  std::vector<batcher_actor> running;
  std::vector<std::pair<std::string, batcher_actor>> failed;
  {
    std::lock_guard guard{mutex};
    if (!health || health.address() != dead)
      return;
    auto why = system.render(reason);
    if (!health_restarts.allow(system.clock().now())) {
      spdlog::error("the health actor stopped ({}) more than {} times within {} s; it stays down: "
                    "no provider is sin-binned or probed until emr restarts",
                    why, restarts.max_restarts, restarts.window.count());
      return;
    }
    spdlog::warn("the health actor stopped ({}); restarting it", why);
    health = fresh = system.spawn(emr::health, health_config);
    for (const auto& [name, e] : entries)
      if (e.failed)
        failed.emplace_back(name, e.route.batcher);
      else if (e.route.batcher)
        running.push_back(e.route.batcher);
  }
  watch(fresh);
  // Running batchers attach themselves to the new actor; a failed one is attached for it, so
  // that the new actor reports it failed too.
  for (const auto& b : running)
    caf::anon_send(b, atom::attach::value, caf::actor_cast<caf::actor>(fresh));
  for (const auto& [name, b] : failed)
    caf::anon_send(fresh, atom::attach::value, name, b);
}

void provider_directory::registry::drain(const entry& e) {
  if (e.route.batcher)
    caf::anon_send(e.route.batcher, atom::drain::value);
}

provider_directory::provider_directory(caf::actor_system& system, batcher_settings batching,
                                       health_settings health, restart_settings restarts)
    : registry_(std::make_shared<registry>(system, batching, health, restarts)) {
  registry_->health = system.spawn(emr::health, health);
  registry_->watch(registry_->health);
}

provider_directory::~provider_directory() {
  drain_all();
}

void provider_directory::start(const provider_spec& spec) {
  batcher_actor started;
  {
    std::lock_guard guard{registry_->mutex};
    auto e = registry_->make_entry(spec);
    started = e.route.batcher;
    if (auto it = registry_->entries.find(spec.name); it != registry_->entries.end())
      registry::drain(it->second);
    registry_->entries.insert_or_assign(spec.name, std::move(e));
  }
  registry_->watch(spec.name, started);
}

void provider_directory::stop(const std::string& name) {
  std::lock_guard guard{registry_->mutex};
  if (auto it = registry_->entries.find(name); it != registry_->entries.end()) {
    registry::drain(it->second);
    registry_->entries.erase(it);
  }
  if (registry_->health)
    caf::anon_send(registry_->health, atom::detach::value, name);
}

void provider_directory::hurry_all() {
  std::shared_lock guard{registry_->mutex};
  for (auto& [name, e] : registry_->entries)
    if (e.route.batcher)
      caf::anon_send(e.route.batcher, atom::hurry::value);
}

void provider_directory::drain_all() {
  std::lock_guard guard{registry_->mutex};
  for (auto& [name, e] : registry_->entries)
    registry::drain(e);
  registry_->entries.clear();
  if (registry_->health)
    caf::anon_send_exit(registry_->health, caf::exit_reason::user_shutdown);
  registry_->health = nullptr;
}

std::optional<provider_route> provider_directory::route(std::string_view name) const {
  std::shared_lock guard{registry_->mutex};
  if (auto it = registry_->entries.find(name);
      it != registry_->entries.end() && it->second.route.batcher)
    return it->second.route;
  return std::nullopt;
}

std::vector<provider_route> provider_directory::routes() const {
  std::shared_lock guard{registry_->mutex};
  std::vector<provider_route> out;
  for (const auto& [name, e] : registry_->entries)
    if (e.route.batcher)
      out.push_back(e.route);
  return out;
}

std::vector<provider_spec> provider_directory::specs() const {
  std::shared_lock guard{registry_->mutex};
  std::vector<provider_spec> out;
  for (const auto& [name, e] : registry_->entries)
    out.push_back(e.spec);
  return out;
}

std::vector<batcher_actor> provider_directory::batchers() const {
  std::shared_lock guard{registry_->mutex};
  std::vector<batcher_actor> out;
  for (const auto& [name, e] : registry_->entries)
    if (e.route.batcher)
      out.push_back(e.route.batcher);
  return out;
}

health_actor provider_directory::health() const {
  std::shared_lock guard{registry_->mutex};
  return registry_->health;
}

} // namespace emr

#include "actors/directory.hpp"

namespace emr {

provider_directory::provider_directory(caf::actor_system& system, batcher_settings settings,
                                       health_actor health)
  : system_(system), settings_(settings), health_(std::move(health)) {
}

provider_directory::~provider_directory() {
  drain_all();
}

provider_directory::entry provider_directory::make_entry(const provider_spec& spec) {
  entry e{spec, provider_route{spec.name, spec.type, spec.model, {}, {}, make_provider(spec)}};
  e.route.limits = effective_limits(spec, *e.route.adapter);
  if (spec.enabled)
    e.route.batcher = system_.spawn(batcher, spec, settings_, health_);
  return e;
}

void provider_directory::drain(const entry& e) {
  if (e.route.batcher)
    caf::anon_send(e.route.batcher, atom::drain::value);
}

void provider_directory::start(const provider_spec& spec) {
  auto e = make_entry(spec);
  std::lock_guard guard{mutex_};
  if (auto it = entries_.find(spec.name); it != entries_.end())
    drain(it->second);
  entries_.insert_or_assign(spec.name, std::move(e));
}

void provider_directory::stop(const std::string& name) {
  std::lock_guard guard{mutex_};
  if (auto it = entries_.find(name); it != entries_.end()) {
    drain(it->second);
    entries_.erase(it);
  }
  caf::anon_send(health_, atom::detach::value, name);
}

void provider_directory::hurry_all() {
  std::lock_guard guard{mutex_};
  for (auto& [name, e] : entries_)
    if (e.route.batcher)
      caf::anon_send(e.route.batcher, atom::hurry::value);
}

void provider_directory::drain_all() {
  std::lock_guard guard{mutex_};
  for (auto& [name, e] : entries_)
    drain(e);
  entries_.clear();
}

std::optional<provider_route> provider_directory::route(std::string_view name) const {
  std::shared_lock guard{mutex_};
  if (auto it = entries_.find(name); it != entries_.end() && it->second.route.batcher)
    return it->second.route;
  return std::nullopt;
}

std::vector<provider_route> provider_directory::routes() const {
  std::shared_lock guard{mutex_};
  std::vector<provider_route> out;
  for (const auto& [name, e] : entries_)
    if (e.route.batcher)
      out.push_back(e.route);
  return out;
}

std::vector<provider_spec> provider_directory::specs() const {
  std::shared_lock guard{mutex_};
  std::vector<provider_spec> out;
  for (const auto& [name, e] : entries_)
    out.push_back(e.spec);
  return out;
}

std::vector<batcher_actor> provider_directory::batchers() const {
  std::shared_lock guard{mutex_};
  std::vector<batcher_actor> out;
  for (const auto& [name, e] : entries_)
    if (e.route.batcher)
      out.push_back(e.route.batcher);
  return out;
}

} // namespace emr

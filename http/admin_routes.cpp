// /admin/*: keys and providers lifecycle, the effective config, and the actors' own stats.
// Store calls block, so they run here on HTTP threads and never inside an actor.

#include "actors/request.hpp"
#include "actors/waiting_scope.hpp"
#include "http/caller_text.hpp"
#include "http/embed_request.hpp"
#include "http/exchange.hpp"
#include "http/provider_records.hpp"
#include "http/refusals.hpp"
#include "http/route_table.hpp"
#include "http/routes.hpp"
#include "http/stats_json.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <spdlog/spdlog.h>

namespace json = boost::json;

namespace emr {

namespace {

using handler = std::function<void(const httplib::Request&, httplib::Response&)>;

api_error not_found(std::string what) {
  return api_error{404, "not_found", std::move(what), {}, {}, -1};
}

json::object key_json(const key_record& k) {
  json::object o{
      {"id", k.id}, {"name", k.name}, {"public_id", k.public_id}, {"created_at", k.created_at}};
  o["last_used_at"] = k.last_used_at ? json::value(*k.last_used_at) : json::value(nullptr);
  o["revoked_at"] = k.revoked_at ? json::value(*k.revoked_at) : json::value(nullptr);
  o["revoked"] = k.revoked_at.has_value();
  o["requests_per_minute"] = k.limits.requests_per_minute;
  o["tokens_per_minute"] = k.limits.tokens_per_minute;
  o["tokens_per_day"] = k.limits.tokens_per_day;
  return o;
}

// An admin route: the admin check, then the body if the route takes one (only then: without
// the secret a request costs no more than its head), then the handler, with the store's failure
// answer. A route without a body takes it as a plain handler.
class admin_route {
public:
  admin_route(app& a, handler inner) : a_(a), inner_(std::move(inner)) {}
  void operator()(const httplib::Request& req, httplib::Response& res) const {
    serve(req, res, nullptr);
  }
  void operator()(const httplib::Request& req, httplib::Response& res,
                  const httplib::ContentReader& read) const {
    serve(req, res, &read);
  }

private:
  void serve(const httplib::Request& req, httplib::Response& res,
             const httplib::ContentReader* read) const;
  app& a_;
  handler inner_;
};

void admin_route::serve(const httplib::Request& req, httplib::Response& res,
                        const httplib::ContentReader* read) const {
  request_id(req, res);
  auto authorization = req.get_header_value("Authorization");
  auto token = bearer_token(authorization);
  if (token.empty() || !admin_secret_matches(a_.admin_secret, token))
    return refuse_unread(
        req, res, api_error{401, "authentication_error", "admin secret required", {}, {}, -1});
  if (read && !read_body(req, res, *read))
    return;
  try {
    inner_(req, res);
  } catch (const store_unavailable& e) {
    // Fail static: this replica keeps serving callers with what it holds; only changes wait.
    spdlog::warn("store unavailable on {} {}: {}", req.method, json_quoted(req.path), e.what());
    send_error(
        res,
        api_error{
            503, "store_unavailable", "the store cannot be reached; retry shortly", {}, {}, 5000});
  } catch (const storage_error& e) {
    spdlog::error("store failure on {} {}: {}", req.method, json_quoted(req.path), e.what());
    send_error(res,
               api_error{500, "storage_error", "the store failed; see the server log", {}, {}, -1});
  }
}

std::optional<json::object> json_object(const httplib::Request& req, httplib::Response& res) {
  auto body =
      parse_json_body(req.body.empty() ? std::string_view{"{}"} : std::string_view{req.body});
  if (auto e = std::get_if<api_error>(&body)) {
    send_error(res, *e);
    return std::nullopt;
  }
  return std::get<json::value>(body).as_object();
}

// The whole path segment must be a number: "12abc" names no key (stoll would read 12).
std::optional<std::int64_t> key_id(const httplib::Request& req) {
  auto text = req.matches[1].str();
  std::int64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc{} || end != text.data() + text.size())
    return std::nullopt;
  return id;
}

void create_key(app& a, const httplib::Request& req, httplib::Response& res) {
  auto body = json_object(req, res);
  if (!body)
    return;
  if (auto e = check_fields(*body,
                            {"name", "requests_per_minute", "tokens_per_minute", "tokens_per_day"}))
    return send_error(res, *e);
  auto name = body->if_contains("name");
  if (!name || !name->is_string() || !valid_name(name->get_string()))
    return send_error(res, invalid_name("name"));
  key_limits limits;
  if (auto e = read_key_limits(*body, limits))
    return send_error(res, *e);
  auto [record, token] = a.auth.create(std::string_view{name->get_string()}, limits);
  if (limits != key_limits{})
    a.quotas.set(record.id, limits);
  auto o = key_json(record);
  o["key"] = token;
  spdlog::info("created caller key {} ({})", record.id, record.public_id);
  send_json(res, 201, json::serialize(o));
}

void list_keys(app& a, const httplib::Request&, httplib::Response& res) {
  a.auth.flush_last_used();
  json::array keys;
  for (const auto& k : a.db.keys())
    keys.push_back(key_json(k));
  send_json(res, 200, json::serialize(json::object{{"keys", std::move(keys)}}));
}

void revoke_key(app& a, const httplib::Request& req, httplib::Response& res) {
  auto id = key_id(req);
  auto record = id ? a.db.key(*id) : std::nullopt;
  if (!record)
    return send_error(res, not_found("no key with id " + req.matches[1].str()));
  // Revoking a revoked key answers 200 as well (a retried DELETE must not fail), saying so.
  bool revoked_now = a.auth.revoke(*id);
  a.quotas.set(*id, {});
  if (revoked_now)
    spdlog::info("revoked caller key {}", *id);
  auto o = key_json(*a.db.key(*id));
  o["already_revoked"] = !revoked_now;
  send_json(res, 200, json::serialize(o));
}

json::object usage_json(const key_usage_row& u) {
  return json::object{{"requests", u.requests},
                      {"texts", u.texts},
                      {"tokens", u.tokens},
                      {"upstream_texts", u.upstream_texts},
                      {"upstream_calls", std::round(u.upstream_calls * 1000) / 1000},
                      {"cache_hits", u.cache_hits},
                      {"errors", u.errors}};
}

// GET /admin/keys/{id}/usage[?days=N]: the key's use per UTC day, today and the N - 1 before.
void key_usage(app& a, const httplib::Request& req, httplib::Response& res) {
  auto id = key_id(req);
  auto record = id ? a.db.key(*id) : std::nullopt;
  if (!record)
    return send_error(res, not_found("no key with id " + req.matches[1].str()));
  std::int64_t days = 30;
  if (req.has_param("days")) {
    auto text = req.get_param_value("days");
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), days);
    if (ec != std::errc{} || end != text.data() + text.size() || days < 1 || days > 3660)
      return send_error(res, api_error{400,
                                       "invalid_request",
                                       "'days' must be a whole number from 1 to 3660",
                                       "days",
                                       {},
                                       -1});
  }
  auto today = utc_day(unix_now());
  json::array per_day;
  key_usage_row total;
  for (const auto& row : a.usage.usage(*id, today - days + 1)) {
    auto o = usage_json(row);
    o.emplace("day", day_text(row.day));
    per_day.push_back(std::move(o));
    add_counts(total, row);
  }
  send_json(res, 200,
            json::serialize(json::object{{"key_id", *id},
                                         {"name", record->name},
                                         {"from", day_text(today - days + 1)},
                                         {"to", day_text(today)},
                                         {"days", std::move(per_day)},
                                         {"total", usage_json(total)}}));
}

api_error revoked(const httplib::Request& req) {
  return api_error{409, "conflict", "key " + req.matches[1].str() + " is revoked", {}, {}, -1};
}

// The key the path names, if it exists and is not revoked; else the 404 or 409 is sent.
std::optional<key_record> live_key(app& a, const httplib::Request& req, httplib::Response& res) {
  auto id = key_id(req);
  auto record = id ? a.db.key(*id) : std::nullopt;
  if (!record) {
    send_error(res, not_found("no key with id " + req.matches[1].str()));
    return std::nullopt;
  }
  if (record->revoked_at) {
    send_error(res, revoked(req));
    return std::nullopt;
  }
  return record;
}

// PATCH /admin/keys/{id}: its limits; a field left out keeps its value, null or 0 clears it.
void update_key(app& a, const httplib::Request& req, httplib::Response& res) {
  auto body = json_object(req, res);
  if (!body)
    return;
  auto record = live_key(a, req, res);
  if (!record)
    return;
  // A key's name is fixed: the store keeps no rename.
  if (auto e = check_patch_fields(
          *body, {"requests_per_minute", "tokens_per_minute", "tokens_per_day"}, {"name"}))
    return send_error(res, *e);
  auto limits = record->limits;
  if (auto e = read_key_limits(*body, limits))
    return send_error(res, *e);
  if (!a.db.set_key_limits(record->id, limits))
    return send_error(res, revoked(req));
  a.quotas.set(record->id, limits);
  spdlog::info("updated the limits of caller key {}", record->id);
  send_json(res, 200, json::serialize(key_json(*a.db.key(record->id))));
}

void rotate_key(app& a, const httplib::Request& req, httplib::Response& res) {
  auto record = live_key(a, req, res);
  if (!record)
    return;
  const auto id = record->id;
  auto rotated = a.auth.rotate(id);
  if (!rotated)
    return send_error(res, revoked(req));
  a.quotas.set(id, {});
  a.quotas.set(rotated->first.id, rotated->first.limits);
  auto o = key_json(rotated->first);
  o["key"] = rotated->second;
  o["replaces"] = id;
  spdlog::info("rotated caller key {} into {}", id, rotated->first.id);
  send_json(res, 200, json::serialize(o));
}

void add_provider(app& a, const httplib::Request& req, httplib::Response& res) {
  auto body = json_object(req, res);
  if (!body)
    return;
  auto parsed = provider_from_json(*body);
  if (auto e = std::get_if<api_error>(&parsed))
    return send_error(res, *e);
  auto& record = std::get<provider_record>(parsed);
  if (!a.db.add_provider(record))
    return send_error(
        res, api_error{409, "conflict", "provider '" + record.name + "' exists", "name", {}, -1});
  auto stored = a.db.provider(record.name).value_or(record);
  a.directory.start(to_spec(stored));
  spdlog::info("added provider {} ({} {})", stored.name, stored.type, stored.model);
  send_json(res, 201, json::serialize(provider_json(stored)));
}

void list_providers(app& a, const httplib::Request&, httplib::Response& res) {
  json::array list;
  for (const auto& p : a.db.providers())
    list.push_back(provider_json(p));
  send_json(res, 200, json::serialize(json::object{{"providers", std::move(list)}}));
}

void update_provider(app& a, const httplib::Request& req, httplib::Response& res) {
  auto name = req.matches[1].str();
  auto record = a.db.provider(name);
  if (!record)
    return send_error(res, not_found("no provider named '" + name + "'"));
  auto body = json_object(req, res);
  if (!body)
    return;
  if (auto e = patch_provider(*record, *body))
    return send_error(res, *e);
  // Removed meanwhile (another admin call, another replica): nothing was written.
  if (!a.db.update_provider(*record))
    return send_error(res, not_found("no provider named '" + name + "'"));
  // A record that cannot run may be left enabled by a PATCH that only clears a limit.
  if (record->enabled && !check_provider(*record))
    a.directory.start(to_spec(*record));
  else
    a.directory.stop(name);
  spdlog::info("updated provider {}", name);
  send_json(res, 200, json::serialize(provider_json(*record)));
}

void remove_provider(app& a, const httplib::Request& req, httplib::Response& res) {
  auto name = req.matches[1].str();
  if (!a.db.remove_provider(name))
    return send_error(res, not_found("no provider named '" + name + "'"));
  a.directory.stop(name);
  spdlog::info("removed provider {}", name);
  send_json(res, 200, json::serialize(json::object{{"name", name}, {"removed", true}}));
}

void test_provider(app& a, const httplib::Request& req, httplib::Response& res) {
  auto name = req.matches[1].str();
  auto record = a.db.provider(name);
  if (!record)
    return send_error(res, not_found("no provider named '" + name + "'"));
  // Such a record does not run, enabled or not: what is wrong with it is the answer.
  if (auto problem = check_provider(*record))
    return send_error(res,
                      invalid_request("provider '" + name + "' cannot run: " + problem->message));
  auto route = a.directory.route(name);
  if (!route)
    return send_error(
        res, api_error{400, "invalid_request", "provider '" + name + "' is disabled", {}, {}, -1});
  caller_job job;
  job.texts = {"emr connectivity test"};
  job.routes = {*route};
  job.cache = {false, false}; // a test must reach the provider
  job.deadline = a.settings.deadline;
  job.request_id = res.get_header_value("X-Request-Id");
  auto started = std::chrono::steady_clock::now();
  auto outcome = run_job(a, std::move(job));
  auto latency_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  if (outcome.error) {
    auto e = from_failure(*outcome.error);
    return send_json(res, 200,
                     json::serialize(json::object{{"provider", name},
                                                  {"ok", false},
                                                  {"status", e.status},
                                                  {"error", e.message},
                                                  {"latency_ms", latency_ms}}));
  }
  std::size_t dims = 0;
  outcome.answers.front().for_each_vector([&](const float*, std::size_t d) { dims = d; });
  send_json(res, 200,
            json::serialize(json::object{{"provider", name},
                                         {"ok", true},
                                         {"model", route->model},
                                         {"dimensions", dims},
                                         {"latency_ms", latency_ms}}));
}

void stats(app& a, const httplib::Request&, httplib::Response& res) {
  auto actors = collect_stats(a);
  json::object o{{"providers", to_json(actors.batchers)}, {"health", to_json(actors.health)}};
  o["request_actors_live"] = live_request_actors();
  o["request_actors_spawned"] = spawned_request_actors();
  o["actors_running"] = a.system.registry().running();
  o["scheduler_threads"] = a.system.scheduler().num_workers();
  o["http_threads_total"] = a.settings.threads;
  o["http_requests_in_flight"] = a.in_flight_http.load();
  o["http_requests_arriving"] = a.arriving.under_way();
  o["requests_served"] = a.requests_served.load();
  o["auth"] = to_json(a.auth.stats());
  o["cache"] = to_json(a.cache->stats());
  send_json(res, 200, json::serialize(o));
}

void cache_stats_route(app& a, const httplib::Request&, httplib::Response& res) {
  auto o = to_json(a.cache->stats());
  if (a.stored) {
    // Memory's numbers still answer while the store does not.
    try {
      o["stored_entries"] = a.stored->entries();
    } catch (const storage_error&) {
      o["stored_entries"] = nullptr;
    }
  }
  send_json(res, 200, json::serialize(o));
}

// Memory here, and the store every replica shares; other replicas' memory keeps its copies.
void clear_cache(app& a, const httplib::Request&, httplib::Response& res) {
  auto dropped = a.cache->clear();
  json::object o{{"cleared", dropped}};
  if (a.stored)
    o["cleared_stored"] = a.stored->clear();
  spdlog::info("embedding cache cleared: {} entries dropped", dropped);
  send_json(res, 200, json::serialize(o));
}

} // namespace

void install_admin_routes(route_table& routes, app& a, admin_changes& changes) {
  // `one_at_a_time`: the lock of the kind of record the route changes, if it changes one.
  auto bind = [&a](void (*f)(app&, const httplib::Request&, httplib::Response&),
                   std::mutex* one_at_a_time = nullptr) {
    // The store, argon2 and a provider's test call hold an operator's request for milliseconds:
    // another HTTP thread runs callers' requests meanwhile.
    return admin_route(a,
                       [&a, f, one_at_a_time](const httplib::Request& req, httplib::Response& res) {
                         waiting_scope waiting;
                         std::unique_lock<std::mutex> change;
                         if (one_at_a_time)
                           change = std::unique_lock{*one_at_a_time};
                         f(a, req, res);
                       });
  };
  routes.post("/admin/keys", bind(create_key));
  routes.get("/admin/keys", bind(list_keys));
  routes.del(R"(/admin/keys/([^/]+))", bind(revoke_key, &changes.keys));
  routes.post(R"(/admin/keys/([^/]+)/rotate)", bind(rotate_key, &changes.keys));
  routes.get(R"(/admin/keys/([^/]+)/usage)", bind(key_usage));
  routes.patch(R"(/admin/keys/([^/]+))", bind(update_key, &changes.keys));
  routes.post("/admin/providers", bind(add_provider, &changes.providers));
  routes.get("/admin/providers", bind(list_providers));
  routes.patch(R"(/admin/providers/([^/]+))", bind(update_provider, &changes.providers));
  routes.del(R"(/admin/providers/([^/]+))", bind(remove_provider, &changes.providers));
  routes.post(R"(/admin/providers/([^/]+)/test)", bind(test_provider));
  routes.get("/admin/config", bind([](app& a, const httplib::Request&, httplib::Response& res) {
               send_json(res, 200, json::serialize(a.effective_config));
             }));
  routes.get("/admin/stats", bind(stats));
  routes.get("/admin/cache", bind(cache_stats_route));
  routes.del("/admin/cache", bind(clear_cache));
}

} // namespace emr

// `emr status` and `emr health`: what the running router is doing, from its own actors.

#include "cli/admin_client.hpp"
#include "cli/commands.hpp"

#include <boost/json.hpp>

#include <iostream>

namespace json = boost::json;

namespace emr {

namespace {

double number(const json::value& v) {
  if (auto d = v.if_double())
    return *d;
  if (auto i = v.if_int64())
    return static_cast<double>(*i);
  if (auto u = v.if_uint64())
    return static_cast<double>(*u);
  return 0;
}

// A limit in force and where it comes from, e.g. "600 (operator)"; "-" when none is known.
std::string limit_cell(const json::object& b, std::string_view measure) {
  auto limit = number(b.at(std::string(measure) + "_per_minute"));
  if (limit == 0)
    return "-";
  return cell(b.at(std::string(measure) + "_per_minute")) + " (" +
         cell(b.at(std::string(measure) + "_limit_source")) + ")";
}

std::string left_cell(const json::value& left) {
  return number(left) < 0 ? "-" : cell(left);
}

json::object summary(const json::value& stats, const json::value& providers,
                     const json::value& keys, const json::value& status) {
  double calls = 0, callers = 0;
  for (const auto& p : stats.at("providers").as_array()) {
    calls += number(p.at("batches_flushed"));
    callers += number(p.at("chunks_received"));
  }
  std::size_t active_keys = 0;
  for (const auto& k : keys.at("keys").as_array())
    active_keys += !k.at("revoked").as_bool();
  return json::object{{"version", status.at("version")},
                      {"uptime_s", status.at("uptime_s")},
                      {"providers", providers.at("providers").as_array().size()},
                      {"active_keys", active_keys},
                      {"requests_served", stats.at("requests_served")},
                      {"upstream_calls", calls},
                      {"compression", calls == 0 ? 0.0 : callers / calls}};
}

void print_actor_tables(const json::value& stats) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : stats.at("providers").as_array()) {
    const auto& o = p.as_object();
    rows.push_back({cell(o.at("provider")), cell(o.at("queued_texts")),
                    cell(o.at("queued_callers")), cell(o.at("call_window")),
                    cell(o.at("in_flight_calls")), cell(o.at("live_supervisors")),
                    cell(o.at("batches_flushed")), cell(o.at("texts_flushed")),
                    cell(o.at("mean_texts_per_call")), cell(o.at("largest_call_texts")),
                    cell(o.at("compression")), cell(o.at("mailbox_size"))});
  }
  std::cout << "\nbatchers\n";
  print_table({"PROVIDER", "QUEUED", "CALLERS", "WINDOW", "IN FLIGHT", "SUPERVISORS", "BATCHES",
               "TEXTS", "MEAN/CALL", "MAX/CALL", "COMPRESSION", "MAILBOX"},
              rows);
  std::cout << "\nactors\n";
  print_table({"REQUEST ACTORS LIVE", "SPAWNED", "RUNNING", "SCHEDULER THREADS", "HTTP BUSY",
               "HTTP THREADS"},
              {{cell(stats.at("request_actors_live")), cell(stats.at("request_actors_spawned")),
                cell(stats.at("actors_running")), cell(stats.at("scheduler_threads")),
                cell(stats.at("http_requests_in_flight")), cell(stats.at("http_threads_total"))}});
}

} // namespace

void add_status_commands(CLI::App& app) {
  auto status = app.add_subcommand("status", "Uptime, providers, keys, traffic and compression");
  auto status_opts = std::make_shared<admin_options>();
  auto actors = std::make_shared<bool>(false);
  add_admin_options(*status, *status_opts);
  status->add_flag("--actors", *actors, "also show each actor's own numbers");
  status->callback([status_opts, actors] {
    auto stats = admin_call(*status_opts, "GET", "/admin/stats");
    auto s = summary(stats, admin_call(*status_opts, "GET", "/admin/providers"),
                     admin_call(*status_opts, "GET", "/admin/keys"),
                     admin_call(*status_opts, "GET", "/status"));
    if (*actors)
      s["actors"] = stats;
    if (status_opts->json) {
      std::cout << json::serialize(s) << "\n";
      return;
    }
    print_table(
        {"VERSION", "UPTIME S", "PROVIDERS", "ACTIVE KEYS", "REQUESTS", "UPSTREAM CALLS",
         "COMPRESSION"},
        {{cell(s["version"]), cell(s["uptime_s"]), cell(s["providers"]), cell(s["active_keys"]),
          cell(s["requests_served"]), cell(s["upstream_calls"]), cell(s["compression"])}});
    if (*actors)
      print_actor_tables(stats);
  });

  auto health =
      app.add_subcommand("health", "One row per provider: state, latency, errors, batching");
  auto health_opts = std::make_shared<admin_options>();
  add_admin_options(*health, *health_opts);
  health->callback([health_opts] {
    auto stats = admin_call(*health_opts, "GET", "/admin/stats");
    json::object rows_json;
    std::vector<std::vector<std::string>> rows;
    const auto& health_of = stats.at("health").as_object();
    for (const auto& p : stats.at("providers").as_array()) {
      const auto& b = p.as_object();
      auto name = b.at("provider").as_string();
      json::object h;
      if (auto it = health_of.if_contains(name))
        h = it->as_object();
      json::object row{{"provider", name},
                       {"state", h.contains("state") ? h["state"] : json::value("healthy")},
                       {"latency_p50_ms", h["latency_p50_ms"]},
                       {"latency_p95_ms", h["latency_p95_ms"]},
                       {"latency_p99_ms", h["latency_p99_ms"]},
                       {"error_rate", h["error_rate"]},
                       {"sin_bin_remaining_ms", h["sin_bin_remaining_ms"]},
                       {"flush_threshold", b.at("flush_threshold")},
                       {"max_texts_per_call", b.at("max_texts_per_call")},
                       {"requests_per_minute", b.at("requests_per_minute")},
                       {"requests_limit_source", b.at("requests_limit_source")},
                       {"requests_left", b.at("requests_left")},
                       {"tokens_per_minute", b.at("tokens_per_minute")},
                       {"tokens_limit_source", b.at("tokens_limit_source")},
                       {"tokens_left", b.at("tokens_left")},
                       {"paced_for_ms", b.at("paced_for_ms")},
                       {"call_window", b.at("call_window")},
                       {"in_flight_calls", b.at("in_flight_calls")}};
      rows.push_back({cell(row["provider"]), cell(row["state"]), cell(row["latency_p50_ms"]),
                      cell(row["latency_p95_ms"]), cell(row["latency_p99_ms"]),
                      cell(row["error_rate"]), cell(row["sin_bin_remaining_ms"]),
                      limit_cell(b, "requests"), left_cell(b.at("requests_left")),
                      limit_cell(b, "tokens"), left_cell(b.at("tokens_left")),
                      cell(row["flush_threshold"]) + "/" + cell(row["max_texts_per_call"]),
                      cell(row["call_window"]), cell(row["in_flight_calls"])});
      rows_json[name] = std::move(row);
    }
    if (health_opts->json) {
      std::cout << json::serialize(json::object{{"providers", std::move(rows_json)}}) << "\n";
      return;
    }
    print_table({"PROVIDER", "STATE", "P50 MS", "P95 MS", "P99 MS", "ERROR RATE", "SIN-BIN MS",
                 "RPM", "RPM LEFT", "TPM", "TPM LEFT", "FLUSH AT/MAX", "CALL WINDOW", "IN FLIGHT"},
                rows);
  });
}

} // namespace emr

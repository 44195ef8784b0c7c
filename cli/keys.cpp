// `emr keys create | list | update | revoke | rotate | usage`: caller keys, through the admin API.

#include "cli/admin_client.hpp"
#include "cli/commands.hpp"
#include "http/rate_limit_fields.hpp"

#include <boost/json.hpp>

#include <iostream>

namespace json = boost::json;

namespace emr {

namespace {

/// A key's limits as given on the command line: 0 is a value there (it clears a limit), not an
/// absence, so each remembers whether it was given.
struct limit_options {
  std::int64_t requests_per_minute = 0, tokens_per_minute = 0, tokens_per_day = 0;
  CLI::Option *rpm = nullptr, *tpm = nullptr, *tpd = nullptr;

  void add_to(CLI::App& command) {
    rpm = command.add_option("--rpm", requests_per_minute, "requests a minute (0: no limit)")
              ->check(CLI::Range(std::int64_t{0}, most_requests_per_minute));
    tpm = command.add_option("--tpm", tokens_per_minute, "tokens a minute (0: no limit)")
              ->check(CLI::Range(std::int64_t{0}, most_tokens_per_minute));
    tpd = command.add_option("--tpd", tokens_per_day, "tokens a UTC day (0: no limit)")
              ->check(CLI::Range(std::int64_t{0}, most_tokens_per_day));
  }
  bool any() const { return rpm->count() + tpm->count() + tpd->count() > 0; }
  void put(json::object& body) const {
    if (rpm->count() > 0)
      body["requests_per_minute"] = requests_per_minute;
    if (tpm->count() > 0)
      body["tokens_per_minute"] = tokens_per_minute;
    if (tpd->count() > 0)
      body["tokens_per_day"] = tokens_per_day;
  }
};

void print_key(const admin_options& options, const json::value& answer, std::string_view verb) {
  if (options.json) {
    std::cout << json::serialize(answer) << "\n";
    return;
  }
  const auto& o = answer.as_object();
  std::cerr << verb << " key " << cell(o.at("id")) << " (" << cell(o.at("name"))
            << "); store it now, it is not shown again:\n";
  std::cout << cell(o.at("key")) << "\n";
}

} // namespace

void add_keys_commands(CLI::App& app) {
  auto keys = app.add_subcommand("keys", "Manage caller API keys");
  keys->require_subcommand(1);

  auto create = keys->add_subcommand("create", "Issue a new caller key (printed once)");
  auto create_opts = std::make_shared<admin_options>();
  auto name = std::make_shared<std::string>();
  auto create_limits = std::make_shared<limit_options>();
  create->add_option("--name", *name, "what the key is for")->required();
  create_limits->add_to(*create);
  add_admin_options(*create, *create_opts);
  create->callback([create_opts, name, create_limits] {
    json::object fields{{"name", *name}};
    create_limits->put(fields);
    json::value body = std::move(fields);
    print_key(*create_opts, admin_call(*create_opts, "POST", "/admin/keys", &body), "created");
  });

  auto update = keys->add_subcommand("update", "Change a key's limits");
  auto update_opts = std::make_shared<admin_options>();
  auto update_id = std::make_shared<std::string>();
  auto update_limits = std::make_shared<limit_options>();
  update->add_option("id", *update_id, "key id")->required();
  update_limits->add_to(*update);
  add_admin_options(*update, *update_opts);
  update->callback([update_opts, update_id, update_limits] {
    if (!update_limits->any())
      throw command_failure("give at least one of --rpm, --tpm, --tpd");
    json::object fields;
    update_limits->put(fields);
    json::value body = std::move(fields);
    auto answer =
        admin_call(*update_opts, "PATCH", "/admin/keys/" + path_segment(*update_id), &body);
    if (update_opts->json)
      std::cout << json::serialize(answer) << "\n";
    else
      std::cout << "updated key " << *update_id << "\n";
  });

  auto list = keys->add_subcommand("list", "List caller keys (never their secrets)");
  auto list_opts = std::make_shared<admin_options>();
  add_admin_options(*list, *list_opts);
  list->callback([list_opts] {
    auto answer = admin_call(*list_opts, "GET", "/admin/keys");
    if (list_opts->json) {
      std::cout << json::serialize(answer) << "\n";
      return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& k : answer.at("keys").as_array()) {
      const auto& o = k.as_object();
      auto limit = [&](std::string_view field) {
        return o.at(field).to_number<std::int64_t>() == 0 ? std::string{"-"} : cell(o.at(field));
      };
      rows.push_back(
          {cell(o.at("id")), cell(o.at("name")), cell(o.at("public_id")), cell(o.at("created_at")),
           cell(o.at("last_used_at")), o.at("revoked").as_bool() ? "revoked" : "active",
           limit("requests_per_minute"), limit("tokens_per_minute"), limit("tokens_per_day")});
    }
    print_table({"ID", "NAME", "PUBLIC ID", "CREATED", "LAST USED", "STATE", "RPM", "TPM", "TPD"},
                rows);
  });

  auto revoke = keys->add_subcommand("revoke", "Revoke a key: its next request gets 401");
  auto revoke_opts = std::make_shared<admin_options>();
  auto revoke_id = std::make_shared<std::string>();
  revoke->add_option("id", *revoke_id, "key id")->required();
  add_admin_options(*revoke, *revoke_opts);
  revoke->callback([revoke_opts, revoke_id] {
    auto answer = admin_call(*revoke_opts, "DELETE", "/admin/keys/" + path_segment(*revoke_id));
    if (revoke_opts->json)
      std::cout << json::serialize(answer) << "\n";
    else
      std::cout << "revoked key " << *revoke_id << "\n";
  });

  auto rotate = keys->add_subcommand("rotate", "Revoke a key and issue its replacement at once");
  auto rotate_opts = std::make_shared<admin_options>();
  auto rotate_id = std::make_shared<std::string>();
  rotate->add_option("id", *rotate_id, "key id")->required();
  add_admin_options(*rotate, *rotate_opts);
  rotate->callback([rotate_opts, rotate_id] {
    print_key(
        *rotate_opts,
        admin_call(*rotate_opts, "POST", "/admin/keys/" + path_segment(*rotate_id) + "/rotate"),
        "rotated into");
  });

  auto usage = keys->add_subcommand("usage", "What a key used, per UTC day");
  auto usage_opts = std::make_shared<admin_options>();
  auto usage_id = std::make_shared<std::string>();
  auto days = std::make_shared<int>(30);
  usage->add_option("id", *usage_id, "key id")->required();
  usage->add_option("--days", *days, "today and the days before it (1 to 3660)")
      ->check(CLI::Range(1, 3660))
      ->capture_default_str();
  add_admin_options(*usage, *usage_opts);
  usage->callback([usage_opts, usage_id, days] {
    auto answer = admin_call(*usage_opts, "GET",
                             "/admin/keys/" + path_segment(*usage_id) +
                                 "/usage?days=" + std::to_string(*days));
    if (usage_opts->json) {
      std::cout << json::serialize(answer) << "\n";
      return;
    }
    auto row = [](std::string day, const json::value& u) {
      return std::vector<std::string>{
          std::move(day),           cell(u.at("requests")),       cell(u.at("texts")),
          cell(u.at("tokens")),     cell(u.at("upstream_texts")), cell(u.at("upstream_calls")),
          cell(u.at("cache_hits")), cell(u.at("errors"))};
    };
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : answer.at("days").as_array())
      rows.push_back(row(std::string{d.at("day").as_string()}, d));
    rows.push_back(row("total", answer.at("total")));
    print_table({"DAY", "REQUESTS", "TEXTS", "TOKENS", "UPSTREAM TEXTS", "UPSTREAM CALLS",
                 "CACHE HITS", "ERRORS"},
                rows);
  });
}

} // namespace emr

// `emr providers add | list | update | remove | test`: providers, through the admin API.

#include "cli/admin_client.hpp"
#include "cli/commands.hpp"
#include "http/provider_records.hpp"
#include "providers/endpoint.hpp"

#include <boost/json.hpp>

#include <iostream>

namespace json = boost::json;

namespace emr {

namespace {

struct provider_fields {
  std::string name, type, endpoint, model, api_key_env;
  int max_batch = 0;
  bool enable = false, disable = false;
  std::int64_t requests_per_minute = 0, tokens_per_minute = 0;
  /// Given on the command line: 0 is a value there (it clears a limit), not an absence.
  CLI::Option *rpm_given = nullptr, *tpm_given = nullptr;

  void add_rate_limit_options(CLI::App& command) {
    rpm_given = command
                    .add_option("--rpm", requests_per_minute,
                                "requests per minute the provider allows this key (0: not set, "
                                "learned from its answers)")
                    ->check(CLI::Range(std::int64_t{0}, most_requests_per_minute));
    tpm_given = command
                    .add_option("--tpm", tokens_per_minute,
                                "tokens per minute the provider allows this key (0: not set, "
                                "learned from its answers)")
                    ->check(CLI::Range(std::int64_t{0}, most_tokens_per_minute));
  }

  void put_rate_limits(json::object& body) const {
    if (rpm_given->count() > 0)
      body["requests_per_minute"] = requests_per_minute;
    if (tpm_given->count() > 0)
      body["tokens_per_minute"] = tokens_per_minute;
  }
};

// The server checks the endpoint too; checking here names the option instead of the JSON field.
void check_endpoint(const std::string& url) {
  if (auto parsed = parse_endpoint(url); !parsed.endpoint)
    throw command_failure("--endpoint " + parsed.problem);
}

// A limit the operator did not set shows as "-".
std::string rate_limit_cell(const json::value& limit) {
  return limit.is_int64() && limit.get_int64() > 0 ? cell(limit) : "-";
}

// A stored record the server could not start shows why instead of its state.
std::string state(const json::object& provider) {
  if (auto problem = provider.if_contains("problem"); problem && problem->is_string())
    return "unusable: " + cell(*problem);
  return provider.at("enabled").as_bool() ? "enabled" : "disabled";
}

void print_provider(const admin_options& options, const json::value& answer,
                    std::string_view verb) {
  if (options.json)
    std::cout << json::serialize(answer) << "\n";
  else
    std::cout << verb << " provider " << cell(answer.at("name")) << "\n";
}

} // namespace

void add_providers_commands(CLI::App& app) {
  auto providers = app.add_subcommand("providers", "Manage embedding providers");
  providers->require_subcommand(1);

  auto add = providers->add_subcommand("add", "Register a provider; it serves at once");
  auto add_opts = std::make_shared<admin_options>();
  auto f = std::make_shared<provider_fields>();
  add->add_option("--name", f->name, "name callers use")->required();
  add->add_option("--type", f->type, "voyage, cohere, openai or openai-compatible")->required();
  add->add_option("--api-key-env", f->api_key_env, "environment variable holding the API key")
      ->required();
  add->add_option("--endpoint", f->endpoint, "full URL of the embeddings endpoint")->required();
  add->add_option("--model", f->model, "model to embed with")->required();
  add->add_option("--max-batch", f->max_batch,
                  "texts per upstream call (default: the provider's maximum)");
  f->add_rate_limit_options(*add);
  add_admin_options(*add, *add_opts);
  add->callback([add_opts, f] {
    check_endpoint(f->endpoint);
    json::object body{{"name", f->name},
                      {"type", f->type},
                      {"endpoint", f->endpoint},
                      {"model", f->model},
                      {"api_key_env", f->api_key_env}};
    if (f->max_batch != 0)
      body["max_batch"] = f->max_batch;
    f->put_rate_limits(body);
    json::value v = std::move(body);
    print_provider(*add_opts, admin_call(*add_opts, "POST", "/admin/providers", &v), "added");
  });

  auto list = providers->add_subcommand("list", "List providers (never key values)");
  auto list_opts = std::make_shared<admin_options>();
  add_admin_options(*list, *list_opts);
  list->callback([list_opts] {
    auto answer = admin_call(*list_opts, "GET", "/admin/providers");
    if (list_opts->json) {
      std::cout << json::serialize(answer) << "\n";
      return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& p : answer.at("providers").as_array()) {
      const auto& o = p.as_object();
      rows.push_back({cell(o.at("name")), cell(o.at("type")), cell(o.at("model")),
                      cell(o.at("endpoint")),
                      cell(o.at("api_key_env")) + (o.at("api_key_set").as_bool() ? "" : " (unset)"),
                      o.at("max_batch").as_int64() == 0 ? "default" : cell(o.at("max_batch")),
                      rate_limit_cell(o.at("requests_per_minute")),
                      rate_limit_cell(o.at("tokens_per_minute")), state(o)});
    }
    print_table(
        {"NAME", "TYPE", "MODEL", "ENDPOINT", "KEY ENV", "MAX BATCH", "RPM", "TPM", "STATE"}, rows);
  });

  auto update =
      providers->add_subcommand("update", "Change a provider; callers in flight are kept");
  auto update_opts = std::make_shared<admin_options>();
  auto u = std::make_shared<provider_fields>();
  update->add_option("name", u->name, "provider name")->required();
  update->add_option("--endpoint", u->endpoint, "new endpoint URL");
  update->add_option("--model", u->model, "new model");
  update->add_option("--max-batch", u->max_batch, "new texts per upstream call");
  u->add_rate_limit_options(*update);
  update->add_flag("--enable", u->enable, "serve callers again");
  update->add_flag("--disable", u->disable, "stop serving callers (queued ones are answered)");
  add_admin_options(*update, *update_opts);
  update->callback([update_opts, u] {
    if (u->enable && u->disable)
      throw command_failure("--enable and --disable exclude each other");
    json::object body;
    if (!u->endpoint.empty()) {
      check_endpoint(u->endpoint);
      body["endpoint"] = u->endpoint;
    }
    if (!u->model.empty())
      body["model"] = u->model;
    if (u->max_batch != 0)
      body["max_batch"] = u->max_batch;
    if (u->enable || u->disable)
      body["enabled"] = u->enable;
    u->put_rate_limits(body);
    if (body.empty())
      throw command_failure("nothing to update: give --endpoint, --model, --max-batch, --rpm, "
                            "--tpm, --enable or --disable");
    json::value v = std::move(body);
    print_provider(
        *update_opts,
        admin_call(*update_opts, "PATCH", "/admin/providers/" + path_segment(u->name), &v),
        "updated");
  });

  auto remove =
      providers->add_subcommand("remove", "Remove a provider; queued callers are answered");
  auto remove_opts = std::make_shared<admin_options>();
  auto remove_name = std::make_shared<std::string>();
  remove->add_option("name", *remove_name, "provider name")->required();
  add_admin_options(*remove, *remove_opts);
  remove->callback([remove_opts, remove_name] {
    print_provider(
        *remove_opts,
        admin_call(*remove_opts, "DELETE", "/admin/providers/" + path_segment(*remove_name)),
        "removed");
  });

  auto test = providers->add_subcommand("test", "Make one small real embedding call");
  auto test_opts = std::make_shared<admin_options>();
  auto test_name = std::make_shared<std::string>();
  test->add_option("name", *test_name, "provider name")->required();
  add_admin_options(*test, *test_opts);
  test->callback([test_opts, test_name] {
    auto answer =
        admin_call(*test_opts, "POST", "/admin/providers/" + path_segment(*test_name) + "/test");
    if (test_opts->json) {
      std::cout << json::serialize(answer) << "\n";
    } else if (answer.at("ok").as_bool()) {
      std::cout << *test_name << ": ok, " << cell(answer.at("dimensions")) << " dimensions in "
                << cell(answer.at("latency_ms")) << " ms\n";
    }
    if (!answer.at("ok").as_bool())
      throw command_failure(*test_name + ": " + cell(answer.at("error")));
  });
}

} // namespace emr

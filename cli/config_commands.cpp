// `emr config init | show | validate`: the TOML file, checked without a running server.

#include "cli/commands.hpp"
#include "cli/config.hpp"

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>

namespace json = boost::json;

namespace emr {

namespace {

struct config_options {
  std::string path;
  bool force = false;
  bool json = false;
};

loaded_config load_or_defaults(const std::string& explicit_path, std::string& used) {
  used = resolve_config_path(explicit_path);
  if (used.empty())
    return {};
  if (!std::filesystem::exists(used))
    throw command_failure("no config file at " + used);
  return load_config(used);
}

} // namespace

void add_config_commands(CLI::App& app) {
  auto config = app.add_subcommand("config", "Create and check the configuration file");
  config->require_subcommand(1);

  auto init = config->add_subcommand("init", "Write a commented default emr.toml");
  auto init_opts = std::make_shared<config_options>();
  init->add_option("--config", init_opts->path, "where to write it")->default_str("emr.toml");
  init->add_flag("--force", init_opts->force, "overwrite an existing file");
  init->callback([init_opts] {
    auto path = init_opts->path.empty() ? std::string{"emr.toml"} : init_opts->path;
    if (std::filesystem::exists(path) && !init_opts->force)
      throw command_failure(path + " exists; pass --force to overwrite it");
    std::ofstream out{path, std::ios::trunc};
    out << default_config_text();
    if (!out)
      throw command_failure("cannot write " + path);
    std::cout << "wrote " << path << "\n";
  });

  auto show =
      config->add_subcommand("show", "Print the effective configuration, defaults filled in");
  auto show_opts = std::make_shared<config_options>();
  show->add_option("--config", show_opts->path, "config file (default ./emr.toml if present)");
  show->add_flag("--json", show_opts->json, "print JSON");
  show->callback([show_opts] {
    std::string used;
    auto loaded = load_or_defaults(show_opts->path, used);
    for (const auto& p : loaded.problems)
      std::cerr << p << "\n";
    if (!loaded.problems.empty())
      throw command_failure(used + " is not valid");
    auto o = config_json(loaded.config);
    if (show_opts->json) {
      std::cout << json::serialize(o) << "\n";
      return;
    }
    std::cout << "# effective configuration" << (used.empty() ? " (defaults)" : " from " + used)
              << "\n";
    for (const auto& [section, keys] : o) {
      std::cout << "\n[" << section << "]\n";
      for (const auto& [key, value] : keys.as_object())
        std::cout << key << " = " << json::serialize(value) << "\n";
    }
  });

  auto validate =
      config->add_subcommand("validate", "Report every problem in the configuration file");
  auto validate_opts = std::make_shared<config_options>();
  validate->add_option("--config", validate_opts->path, "config file (default ./emr.toml)");
  validate->add_flag("--json", validate_opts->json, "print JSON");
  validate->callback([validate_opts] {
    std::string used;
    auto loaded = load_or_defaults(validate_opts->path, used);
    if (validate_opts->json) {
      json::array problems;
      for (const auto& p : loaded.problems)
        problems.emplace_back(p);
      std::cout << json::serialize(json::object{{"file", used},
                                                {"valid", loaded.problems.empty()},
                                                {"problems", std::move(problems)}})
                << "\n";
    } else {
      for (const auto& p : loaded.problems)
        std::cout << p << "\n";
    }
    if (!loaded.problems.empty())
      throw command_failure(used + ": " + std::to_string(loaded.problems.size()) + " problem(s)");
    if (!validate_opts->json)
      std::cout << (used.empty() ? std::string{"no config file; defaults are valid"}
                                 : used + " is valid")
                << "\n";
  });
}

} // namespace emr

// `emr store migrate --to postgresql://...`: grows one box into a fleet by copying its SQLite
// store into an empty PostgreSQL database, every caller key still valid. Runs against the files,
// not a server: stop `emr serve` first so that nothing changes under the copy.

#include "cli/commands.hpp"
#include "cli/config.hpp"
#include "storage/database_url.hpp"
#include "storage/postgres_store.hpp"
#include "storage/sqlite_store.hpp"

#include <cstdlib>
#include <iostream>

namespace emr {

namespace {

struct migrate_options {
  std::string config_path;
  std::string from;
  std::string to;
};

} // namespace

void add_store_commands(CLI::App& app) {
  auto store_cmd = app.add_subcommand("store", "Administer the store itself");
  store_cmd->require_subcommand(1);
  auto migrate = store_cmd->add_subcommand(
      "migrate", "Copy the SQLite store into an empty PostgreSQL database, keys kept valid");
  auto opts = std::make_shared<migrate_options>();
  migrate->add_option("--to", opts->to,
                      "postgresql://user:password@host:port/db (default: EMR_DATABASE_URL)");
  migrate->add_option("--from", opts->from, "SQLite file (default: [storage] path of the config)");
  migrate->add_option("--config", opts->config_path, "TOML config (default ./emr.toml if present)");
  migrate->callback([opts] {
    auto to = opts->to;
    if (to.empty())
      if (auto env = std::getenv("EMR_DATABASE_URL"))
        to = env;
    if (to.empty())
      throw command_failure("name the PostgreSQL database: --to postgresql://... or "
                            "EMR_DATABASE_URL");
    auto from = opts->from;
    if (from.empty()) {
      auto path = resolve_config_path(opts->config_path);
      emr_config config;
      if (!path.empty()) {
        auto loaded = load_config(path);
        if (!loaded.problems.empty())
          throw command_failure(path + " is not valid; check it with `emr config validate`");
        config = loaded.config;
      }
      from = config.storage_path;
    }
    try {
      // Only read: a --from that names the wrong file must come out of this as it went in.
      sqlite_store source{sqlite_store::read_only, from};
      auto providers = source.providers();
      auto keys = source.keys();
      postgres_store target{to};
      target.import(providers, keys);
      std::cout << "copied " << providers.size() << " providers and " << keys.size()
                << " caller keys from " << from << " to " << redacted_database_url(to) << "\n";
    } catch (const storage_error& e) {
      throw command_failure(e.what());
    }
  });
}

} // namespace emr

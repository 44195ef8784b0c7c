// emr: the embeddings router. `emr serve` runs it; the other commands administer it.

#include "cli/commands.hpp"

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"emr: merges many callers' embedding requests into few, full provider calls", "emr"};
  app.set_version_flag("--version", std::string{"emr "} + EMR_VERSION);
  app.require_subcommand(1);
  emr::add_serve_command(app);
  emr::add_config_commands(app);
  emr::add_keys_commands(app);
  emr::add_providers_commands(app);
  emr::add_status_commands(app);
  emr::add_store_commands(app);
  emr::add_cache_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const emr::command_failure& e) {
    std::cerr << "emr: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    // A store that cannot be opened, say: a line saying why, not an abort and a core dump.
    std::cerr << "emr: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

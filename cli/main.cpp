// emr: the embeddings router. `emr serve` runs it; the other commands administer it.

#include "cli/commands.hpp"

#include <iostream>
#include <string>
#include <string_view>

namespace {

// docs/configuration.md promises one line on stderr, and CLI11's messages can run to several.
std::string one_line(std::string_view message) {
  std::string line;
  for (char c : message) {
    if (c != '\n' && c != '\r')
      line += c;
    else if (!line.empty() && line.back() != ' ')
      line += ' ';
  }
  while (!line.empty() && line.back() == ' ')
    line.pop_back();
  return line;
}

} // namespace

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
    // --help and --version end the parse too, with exit code 0: CLI11 prints them.
    if (e.get_exit_code() == 0)
      return app.exit(e);
    std::cerr << "emr: " << one_line(e.what()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    // A command's failure, or a store that cannot be opened, say: a line saying why, not an
    // abort and a core dump.
    std::cerr << "emr: " << one_line(e.what()) << "\n";
    return 1;
  }
  return 0;
}

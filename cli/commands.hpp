#pragma once
// One registration function per command group; main() wires them into one CLI.

#include <CLI/CLI.hpp>

namespace emr {

void add_serve_command(CLI::App& app);
void add_config_commands(CLI::App& app);
void add_keys_commands(CLI::App& app);
void add_providers_commands(CLI::App& app);
void add_status_commands(CLI::App& app);
void add_store_commands(CLI::App& app);
void add_cache_commands(CLI::App& app);

/// Thrown by commands to end with a one-line message on stderr and a non-zero exit.
struct command_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

} // namespace emr

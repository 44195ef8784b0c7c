#pragma once
// emr.toml: every key declared once, which gives validation, defaults, the commented default
// file and `emr config show` from the same table.

#include "actors/batcher.hpp"
#include "actors/health.hpp"
#include "actors/restart_limit.hpp"
#include "http/app.hpp"
#include "http/caller_keys.hpp"

#include <boost/json/object.hpp>

#include <string>
#include <vector>

namespace emr {

struct log_settings {
  std::string level = "info";
  std::string format = "text"; ///< "text" or "json"
};

struct emr_config {
  http_settings http;
  std::string storage_path = "emr.db";
  /// A PostgreSQL database every replica shares; empty = the SQLite file at storage_path.
  std::string storage_url;
  batcher_settings batching;
  cache_settings cache;
  health_settings health;
  restart_settings restarts;
  argon2_params argon2;
  auth_limits auth;
  log_settings log;
  std::chrono::seconds shutdown_timeout{30};
};

/// A configuration and every problem found in its file (empty when valid).
struct loaded_config {
  emr_config config;
  std::vector<std::string> problems; ///< "path:line: message", one per problem
};

/// Validates TOML `text`: unknown keys, wrong types and out-of-range values are reported with
/// `origin` and their line; valid keys still apply, so callers decide whether problems are fatal.
loaded_config parse_config(std::string_view text, const std::string& origin);

/// parse_config on the file at `path`; a file that cannot be read is one problem.
loaded_config load_config(const std::string& path);

/// The commented default file `emr config init` writes: every key, commented out at its default.
std::string default_config_text();

/// The effective configuration with defaults filled in.
boost::json::object config_json(const emr_config& config);

/// The config file to use: the explicit one, else ./emr.toml if present, else none.
std::string resolve_config_path(const std::string& explicit_path);

} // namespace emr

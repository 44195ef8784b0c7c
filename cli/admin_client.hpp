#pragma once
// The CLI's side of the admin API: one authenticated JSON call per command.

#include <CLI/CLI.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace emr {

/// The options every admin command takes.
struct admin_options {
  std::string server = "http://127.0.0.1:3200";
  std::string admin_secret;
  bool json = false;
};

/// Adds --server, --admin-secret and --json to a command.
void add_admin_options(CLI::App& cmd, admin_options& options);

/// Calls the admin API; returns the JSON answer of a 2xx, otherwise throws command_failure
/// with the server's message (or "server not reachable at URL").
boost::json::value admin_call(const admin_options& options, const std::string& method,
                              const std::string& path, const boost::json::value* body = nullptr);

/// A provider name or key id as one segment of an admin path: every byte but RFC 3986's unreserved
/// characters percent-encoded, so that `a?b`, `x%41` or `h#sh` name that provider and no other.
std::string path_segment(std::string_view name);

/// Prints rows as an aligned table under the headers.
void print_table(const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows);

/// A JSON value as a table cell: strings bare, null as "-", numbers short.
std::string cell(const boost::json::value& v);

} // namespace emr

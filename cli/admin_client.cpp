#include "cli/admin_client.hpp"

#include "cli/admin_secret.hpp"
#include "cli/commands.hpp"
#include "providers/http_client.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>
#include <httplib.h>

#include <iostream>
#include <iterator>
#include <string_view>

namespace json = boost::json;

namespace emr {

void add_admin_options(CLI::App& cmd, admin_options& options) {
  cmd.add_option("--server", options.server, "emr server URL")->capture_default_str();
  cmd.add_option("--admin-secret", options.admin_secret,
                 "admin secret (default: $EMR_ADMIN_SECRET)");
  cmd.add_flag("--json", options.json, "print JSON for scripts");
}

json::value admin_call(const admin_options& options, const std::string& method,
                       const std::string& path, const json::value* body) {
  auto secret = admin_secret_from(options.admin_secret, "--admin-secret");
  if (secret.empty())
    if (auto env = std::getenv("EMR_ADMIN_SECRET"))
      secret = admin_secret_from(env, "EMR_ADMIN_SECRET");
  if (secret.empty())
    throw command_failure("no admin secret: pass --admin-secret or set EMR_ADMIN_SECRET");
  auto server = parse_endpoint(options.server);
  if (!server.endpoint)
    throw command_failure("--server " + server.problem);
  auto prefix = server.endpoint->target;
  if (prefix == "/")
    prefix.clear();
  auto client = make_http_client(*server.endpoint);
  client->set_connection_timeout(5);
  client->set_read_timeout(120);
  httplib::Headers headers{{"Authorization", "Bearer " + secret}};
  auto payload = body ? json::serialize(*body) : std::string{};
  auto full = prefix + path;
  httplib::Result res = [&] {
    if (method == "GET")
      return client->Get(full, headers);
    if (method == "DELETE")
      return client->Delete(full, headers);
    if (method == "PATCH")
      return client->Patch(full, headers, payload, "application/json");
    return client->Post(full, headers, payload, "application/json");
  }();
  if (!res)
    throw command_failure("server not reachable at " + options.server);
  json::error_code ec;
  auto answer = json::parse(res->body, ec);
  if (res->status < 200 || res->status >= 300) {
    auto status = std::to_string(res->status);
    if (!ec && answer.is_object())
      if (auto err = answer.as_object().if_contains("error"); err && err->is_object())
        if (auto m = err->as_object().if_contains("message"); m && m->is_string())
          throw command_failure(std::string{m->as_string()} + " (HTTP " + status + ")");
    // Not emr's error body: a wrong --server, or a proxy in front of it answering for itself.
    auto base = std::string_view{options.server};
    if (base.ends_with('/'))
      base.remove_suffix(1);
    throw command_failure("unexpected HTTP " + status + " from " + std::string{base} + path +
                          " (is this an emr server?)");
  }
  if (ec)
    throw command_failure("server answered something that is not JSON");
  return answer;
}

std::string path_segment(std::string_view name) {
  std::string segment;
  for (unsigned char c : name) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved)
      segment += static_cast<char>(c);
    else
      fmt::format_to(std::back_inserter(segment), "%{:02X}", c);
  }
  return segment;
}

std::string cell(const json::value& v) {
  if (v.is_null())
    return "-";
  if (auto s = v.if_string())
    return std::string{s->data(), s->size()};
  if (auto d = v.if_double())
    return fmt::format("{:.2f}", *d);
  if (auto b = v.if_bool())
    return *b ? "yes" : "no";
  return json::serialize(v);
}

void print_table(const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths(headers.size());
  for (std::size_t i = 0; i < headers.size(); ++i)
    widths[i] = headers[i].size();
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  // Columns two spaces apart; the last one unpadded.
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t i = 0; i < headers.size(); ++i) {
      auto text = i < row.size() ? std::string_view{row[i]} : std::string_view{};
      if (i + 1 < headers.size())
        fmt::format_to(std::back_inserter(line), "{:<{}}", text, widths[i] + 2);
      else
        line += text;
    }
    std::cout << line << "\n";
  };
  print_row(headers);
  for (const auto& row : rows)
    print_row(row);
}

} // namespace emr

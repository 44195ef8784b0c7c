// `emr cache stats | clear`: the embedding cache of a running router, through the admin API.

#include "cli/admin_client.hpp"
#include "cli/commands.hpp"

#include <boost/json.hpp>

#include <iostream>

namespace json = boost::json;

namespace emr {

void add_cache_commands(CLI::App& app) {
  auto cache = app.add_subcommand("cache", "The embedding cache of a running router");
  cache->require_subcommand(1);

  auto stats = cache->add_subcommand("stats", "Entries, bytes against the bound, hits and misses");
  auto stats_opts = std::make_shared<admin_options>();
  add_admin_options(*stats, *stats_opts);
  stats->callback([stats_opts] {
    auto answer = admin_call(*stats_opts, "GET", "/admin/cache");
    if (stats_opts->json) {
      std::cout << json::serialize(answer) << "\n";
      return;
    }
    const auto& o = answer.as_object();
    std::vector<std::vector<std::string>> rows;
    for (const auto& [field, value] : o)
      rows.push_back({std::string{field}, cell(value)});
    print_table({"FIELD", "VALUE"}, rows);
  });

  auto clear = cache->add_subcommand(
      "clear", "Drop every cached vector, in memory and in the store (callers are unaffected)");
  auto clear_opts = std::make_shared<admin_options>();
  add_admin_options(*clear, *clear_opts);
  clear->callback([clear_opts] {
    auto answer = admin_call(*clear_opts, "DELETE", "/admin/cache");
    if (clear_opts->json) {
      std::cout << json::serialize(answer) << "\n";
      return;
    }
    std::cout << "cleared " << cell(answer.at("cleared")) << " cached vectors";
    if (auto stored = answer.as_object().if_contains("cleared_stored"))
      std::cout << " in memory and " << cell(*stored) << " in the store";
    std::cout << "\n";
  });
}

} // namespace emr

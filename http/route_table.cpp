#include "http/route_table.hpp"

#include <set>

namespace emr {

void route_table::get(const std::string& pattern, httplib::Server::Handler handler) {
  server_.Get(pattern, std::move(handler));
  remember("GET", pattern);
  remember("HEAD", pattern);
}

void route_table::post(const std::string& pattern, httplib::Server::Handler handler) {
  server_.Post(pattern, std::move(handler));
  remember("POST", pattern);
}

void route_table::patch(const std::string& pattern, httplib::Server::Handler handler) {
  server_.Patch(pattern, std::move(handler));
  remember("PATCH", pattern);
}

void route_table::del(const std::string& pattern, httplib::Server::Handler handler) {
  server_.Delete(pattern, std::move(handler));
  remember("DELETE", pattern);
}

std::string route_table::allowed_methods(const std::string& path) const {
  std::set<std::string> methods;
  for (const auto& [method, pattern] : routes_)
    if (std::regex_match(path, pattern))
      methods.insert(method);
  std::string allowed;
  for (const auto& m : methods)
    allowed += (allowed.empty() ? "" : ", ") + m;
  return allowed;
}

bool route_table::serves(std::string_view method) const {
  for (const auto& route : routes_)
    if (route.first == method)
      return true;
  return false;
}

void route_table::remember(std::string method, const std::string& pattern) {
  routes_.emplace_back(std::move(method), std::regex{pattern});
}

} // namespace emr

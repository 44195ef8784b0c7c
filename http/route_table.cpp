#include "http/route_table.hpp"

#include <set>

namespace emr {

void route_table::get(const std::string& pattern, httplib::Server::Handler handler) {
  server_.Get(pattern, std::move(handler));
  remember("GET", pattern);
  remember("HEAD", pattern);
}

void route_table::post(const std::string& pattern,
                       httplib::Server::HandlerWithContentReader handler) {
  server_.Post(pattern, std::move(handler));
  remember("POST", pattern);
}

void route_table::patch(const std::string& pattern,
                        httplib::Server::HandlerWithContentReader handler) {
  server_.Patch(pattern, std::move(handler));
  remember("PATCH", pattern);
}

void route_table::del(const std::string& pattern,
                      httplib::Server::HandlerWithContentReader handler) {
  server_.Delete(pattern, std::move(handler));
  remember("DELETE", pattern);
}

std::string route_table::allowed_methods(const std::string& path) const {
  std::set<std::string> methods;
  for (const auto& r : routes_)
    if (r.matches(path))
      methods.insert(r.method);
  std::string allowed;
  for (const auto& m : methods)
    allowed += (allowed.empty() ? "" : ", ") + m;
  return allowed;
}

bool route_table::serves(std::string_view method) const {
  for (const auto& r : routes_)
    if (r.method == method)
      return true;
  return false;
}

bool route_table::takes(std::string_view method, const std::string& path) const {
  for (const auto& r : routes_)
    if (r.method == method && r.matches(path))
      return true;
  return false;
}

void route_table::remember(std::string method, const std::string& pattern) {
  bool literal = pattern.find_first_of(R"(.[]{}()\*+?^$|)") == std::string::npos;
  routes_.push_back({std::move(method), pattern, std::regex{pattern}, literal});
}

} // namespace emr

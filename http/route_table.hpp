#pragma once
// emr's routes, registered with httplib and remembered by path as well, so that a known path asked
// with another method is told which methods it takes (405 with Allow) rather than 404.

#include <httplib.h>

#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace emr {

class route_table {
public:
  explicit route_table(httplib::Server& server) : server_(server) {}

  void get(const std::string& pattern, httplib::Server::Handler handler);
  void post(const std::string& pattern, httplib::Server::Handler handler);
  void patch(const std::string& pattern, httplib::Server::Handler handler);
  void del(const std::string& pattern, httplib::Server::Handler handler);

  /// The methods routes take on `path`, e.g. "GET, HEAD", for an Allow header; empty when no
  /// route matches the path.
  std::string allowed_methods(const std::string& path) const;
  /// Whether some route takes `method` (HEAD rides on GET).
  bool serves(std::string_view method) const;

private:
  void remember(std::string method, const std::string& pattern);

  httplib::Server& server_;
  std::vector<std::pair<std::string, std::regex>> routes_; ///< method, httplib's pattern
};

} // namespace emr

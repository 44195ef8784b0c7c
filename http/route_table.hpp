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
  /// A route that reads its body itself, if at all: it can refuse a caller before taking it.
  void post(const std::string& pattern, httplib::Server::HandlerWithContentReader handler);
  void patch(const std::string& pattern, httplib::Server::HandlerWithContentReader handler);
  void del(const std::string& pattern, httplib::Server::HandlerWithContentReader handler);

  /// The methods routes take on `path`, e.g. "GET, HEAD", for an Allow header; empty when no
  /// route matches the path.
  std::string allowed_methods(const std::string& path) const;
  /// Whether some route takes `method` (HEAD rides on GET).
  bool serves(std::string_view method) const;
  /// Whether some route takes `method` on `path`.
  bool takes(std::string_view method, const std::string& path) const;

private:
  struct route {
    std::string method;
    std::string pattern; ///< httplib's
    std::regex matcher;
    bool literal; ///< the pattern is a plain path, compared as a string (the hot routes are)
    bool matches(const std::string& path) const {
      return literal ? path == pattern : std::regex_match(path, matcher);
    }
  };
  void remember(std::string method, const std::string& pattern);

  httplib::Server& server_;
  std::vector<route> routes_;
};

} // namespace emr

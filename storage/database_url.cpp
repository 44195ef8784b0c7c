#include "storage/database_url.hpp"

#include <regex>

namespace emr {

std::string redacted_database_url(std::string_view url) {
  static const std::regex uri_password{R"(^(postgres(?:ql)?://[^:/@]*):[^@]*@)"};
  // A quoted value may hold an escaped quote (\').
  static const std::regex keyword_password{R"((password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+))"};
  auto text = std::regex_replace(std::string(url), uri_password, "$1:***@");
  return std::regex_replace(text, keyword_password, "$1***");
}

} // namespace emr

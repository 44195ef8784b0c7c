#include "cli/admin_secret.hpp"

#include "cli/commands.hpp"

#include <algorithm>

namespace emr {

std::string admin_secret_from(std::string_view raw, std::string_view source) {
  constexpr std::string_view blank = " \t\r\n";
  auto first = raw.find_first_not_of(blank);
  if (first == std::string_view::npos)
    return {};
  auto secret = raw.substr(first, raw.find_last_not_of(blank) - first + 1);
  auto is_control = [](unsigned char c) { return c < 0x20 || c == 0x7f; };
  if (std::any_of(secret.begin(), secret.end(), is_control))
    throw command_failure(std::string{source} +
                          " holds a control character inside (a line break, a tab); the admin "
                          "secret must be one line of printable characters");
  return std::string{secret};
}

} // namespace emr

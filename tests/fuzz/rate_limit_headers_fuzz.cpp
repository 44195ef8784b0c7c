// Fuzzes the x-ratelimit-* headers of a provider's answer: any name and value either fill the
// field they name or leave it unset, and a reset is never negative.

#include "providers/rate_limits.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Header lines as "name: value", one a line, like a response's head.
  std::string_view input{reinterpret_cast<const char*>(data), size};
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  while (!input.empty()) {
    auto line = input.substr(0, input.find('\n'));
    input.remove_prefix(std::min(input.size(), line.size() + 1));
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      headers.emplace_back(line, std::string_view{});
    else
      headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  auto limits = emr::read_rate_limit_headers(headers);
  for (auto reset : {limits.reset_requests, limits.reset_tokens})
    if (reset && reset->count() < 0)
      std::abort();
  if (!headers.empty()) {
    auto alone = emr::parse_go_duration(headers.front().second);
    if (alone && alone->count() < 0)
      std::abort();
  }
  return 0;
}

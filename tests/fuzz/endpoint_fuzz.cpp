// Fuzzes the provider endpoint parser: what it accepts is a URL an HTTP client can connect to and
// parses back to the same parts once put together again; what it refuses comes with a reason.

#include "providers/endpoint.hpp"

#include <cstdlib>

namespace {

void require(bool holds) {
  if (!holds)
    std::abort();
}

bool printable(std::string_view s) {
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7f)
      return false;
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view url{reinterpret_cast<const char*>(data), size};
  require(emr::redact_endpoint(url).size() <= url.size());
  auto parsed = emr::parse_endpoint(url);
  if (!parsed.endpoint) {
    require(!parsed.problem.empty());
    return 0;
  }
  const auto& e = *parsed.endpoint;
  require(parsed.problem.empty() && e.port >= 1);
  require(!e.host.empty() && printable(e.host) && e.host.find_first_of("@/?#[]%") == e.host.npos);
  require(!e.target.empty() && e.target.front() == '/' && printable(e.target) &&
          e.target.find('#') == e.target.npos);
  auto host = e.host.find(':') == e.host.npos ? e.host : "[" + e.host + "]";
  auto rebuilt =
      std::string{e.tls ? "https://" : "http://"} + host + ":" + std::to_string(e.port) + e.target;
  // Rebuilt with its port and a decoded host, a URL near the length cap may pass it.
  if (rebuilt.size() > 2048)
    return 0;
  auto again = emr::parse_endpoint(rebuilt);
  require(again.endpoint && again.endpoint->tls == e.tls && again.endpoint->host == e.host &&
          again.endpoint->port == e.port && again.endpoint->target == e.target);
  return 0;
}

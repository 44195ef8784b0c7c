#pragma once
// Which URLs emr will send a provider's traffic to: an endpoint is parsed once by a real URL
// parser (Boost.URL, RFC 3986) into the parts an HTTP client connects with, or refused with why.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace emr {

/// A provider's embeddings URL, split for an HTTP client.
struct endpoint {
  bool tls = false;       ///< https
  std::string host;       ///< DNS name or IP address; an IPv6 address without its brackets
  std::uint16_t port = 0; ///< the URL's port, else 80 or 443
  /// Path and query as they go on the request line, percent-encoded as given ("/" when empty).
  /// A query is kept because OpenAI-compatible gateways (Azure's `?api-version=`) route by it.
  std::string target;
};

/// An endpoint, or why the URL cannot be one.
struct endpoint_parse {
  std::optional<emr::endpoint> endpoint;
  /// Reads after the field's name ("'endpoint' must ..."); never quotes the URL, which may hold
  /// a secret.
  std::string problem;
};

/// Accepts http and https URLs with a host, an optional port (1 to 65535), a path and a query.
/// Refuses user names and passwords and credentials in the query (emr stores and shows the
/// endpoint, so a key there would leak: keys live in the environment), fragments, spaces and
/// control characters, and hosts that are neither a DNS name nor an IPv4 or IPv6 address.
endpoint_parse parse_endpoint(std::string_view url);

/// The URL with any user name and password removed, for showing a stored record.
std::string redact_endpoint(std::string_view url);

} // namespace emr

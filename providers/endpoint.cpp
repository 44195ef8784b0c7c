#include "providers/endpoint.hpp"

#include <boost/algorithm/string/predicate.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace urls = boost::urls;

namespace emr {

namespace {

constexpr std::size_t max_endpoint_bytes = 2048;

// Query parameters that carry an API key in the gateways that take one there.
constexpr std::array<std::string_view, 7> credential_params{
    "key", "api_key", "api-key", "apikey", "access_token", "token", "secret"};

bool is_credential_param(std::string_view name) {
  return std::any_of(
      credential_params.begin(), credential_params.end(),
      [name](std::string_view param) { return boost::algorithm::iequals(name, param); });
}

bool is_dns_name(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' || c == '_';
  });
}

// Boost.URL's port_number() wraps ports past 65535 (99999 becomes 34463): read the digits here.
std::optional<std::uint16_t> port_of(std::string_view digits) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || value < 1 ||
      value > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

bool has_http_scheme(std::string_view url) {
  return boost::algorithm::istarts_with(url, "http://") ||
         boost::algorithm::istarts_with(url, "https://");
}

endpoint_parse refuse(std::string problem) {
  return {std::nullopt, std::move(problem)};
}

constexpr const char* not_a_url =
    "is not a valid absolute URL (RFC 3986): check its scheme, brackets and percent-encoding";

} // namespace

endpoint_parse parse_endpoint(std::string_view url) {
  if (url.size() > max_endpoint_bytes)
    return refuse("must be at most " + std::to_string(max_endpoint_bytes) + " bytes");
  // Checked before parsing so the answer says what is wrong rather than where parsing stopped.
  if (std::any_of(url.begin(), url.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; }))
    return refuse("must not contain spaces or control characters");
  // Boost.URL 1.81 trips its own assertion on some URLs without an authority ("x:?"), so only
  // URLs that can be http or https reach it.
  if (!has_http_scheme(url))
    return refuse("must be an http:// or https:// URL");
  auto parsed = urls::parse_uri(urls::string_view{url.data(), url.size()});
  if (!parsed)
    return refuse(not_a_url);
  const auto& u = *parsed;
  // Boost.URL 1.81 ends a port at its first non-digit and takes the rest for the path: it reads
  // "http://host:8o/" as port 8, path "o/". After an authority, RFC 3986 wants "/" or nothing.
  if (auto path = u.encoded_path(); u.has_authority() && !path.empty() && path.front() != '/')
    return refuse(not_a_url);
  if (u.has_userinfo())
    return refuse("must not contain a user name or password: emr stores and shows the endpoint, "
                  "so the key belongs in the environment variable named by api_key_env");
  if (u.has_fragment())
    return refuse("must not contain a fragment ('#'): it is never sent to the provider");
  endpoint e;
  e.tls = u.scheme_id() == urls::scheme::https;
  switch (u.host_type()) {
  case urls::host_type::name:
    e.host = u.host_name();
    if (!is_dns_name(e.host))
      return refuse(e.host.empty() ? "must name a host"
                                   : "must name its host by a DNS name (letters, digits, '-', "
                                     "'.', '_'; international names in their xn-- form)");
    break;
  case urls::host_type::ipv4:
    e.host = u.host_ipv4_address().to_string();
    break;
  case urls::host_type::ipv6:
    e.host = u.host_ipv6_address().to_string();
    break;
  default:
    return refuse("must name a host by DNS name, IPv4 or IPv6 address");
  }
  if (u.has_port()) {
    auto port = port_of(std::string_view{u.port().data(), u.port().size()});
    if (!port)
      return refuse("must have a port from 1 to 65535");
    e.port = *port;
  } else {
    e.port = e.tls ? 443 : 80;
  }
  for (auto param : u.params())
    if (is_credential_param(param.key))
      return refuse("must not carry a credential in its query ('" + param.key +
                    "'): emr stores and shows the endpoint, so the key belongs in the "
                    "environment variable named by api_key_env");
  e.target = u.encoded_target();
  if (e.target.empty() || e.target.front() == '?')
    e.target.insert(0, "/");
  return {std::move(e), {}};
}

std::string redact_endpoint(std::string_view url) {
  // Textual, so that URLs the parser refuses (stored before it was used) are redacted too: the
  // authority ends at the first '/', '?' or '#', and its user information at its last '@'.
  auto authority = url.find("://");
  if (authority == std::string_view::npos)
    return std::string{url};
  authority += 3;
  auto end = std::min(url.find_first_of("/?#", authority), url.size());
  auto at = url.substr(authority, end - authority).rfind('@');
  if (at == std::string_view::npos)
    return std::string{url};
  return std::string{url.substr(0, authority)} + std::string{url.substr(authority + at + 1)};
}

} // namespace emr

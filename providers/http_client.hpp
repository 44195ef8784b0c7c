#pragma once
// An HTTP client for a checked endpoint, plain or TLS, built from its parsed parts: httplib's
// own URL constructor matches IPv6 hosts of digits and colons only.

#include "providers/endpoint.hpp"

#include <memory>

namespace httplib {
class ClientImpl;
}

namespace emr {

/// Connects lazily, on the first request; TLS verifies the server's certificate.
std::unique_ptr<httplib::ClientImpl> make_http_client(const endpoint& to);

} // namespace emr

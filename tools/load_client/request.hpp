// What a run's requests are made of: the endpoint checked and prepared once, and each caller's
// JSON body.
#pragma once

#include "providers/endpoint.hpp"
#include "tools/load_client.hpp"

#include <httplib.h>

#include <ctime>
#include <string>

namespace emr::load {

/// How long a caller waits for its connection, in either kind of run.
inline constexpr time_t connect_timeout_s = 5;

/// What every request of a run shares, computed once.
struct prepared_endpoint {
  emr::endpoint target; ///< the base URL's host and port
  std::string path;
  httplib::Headers headers;
  std::string body_suffix; ///< the extra fields and the closing brace
};

/// Throws std::invalid_argument unless the base URL is plain http to a loopback address: this
/// tool must never load someone else's server.
prepared_endpoint prepare(const endpoint& e);

/// The JSON body of one call: an embeddings request, or a batch of them.
std::string request_body(const prepared_endpoint& p, const caller& c);

} // namespace emr::load

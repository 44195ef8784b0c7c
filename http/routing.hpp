#pragma once
// Which providers serve a caller's request: by `provider`, `providers`, or OpenAI-style `model`.

#include "actors/directory.hpp"
#include "http/embed_request.hpp"

namespace emr {

/// The routes for a parsed request, or why there are none (400 unknown/ambiguous, 404 model).
std::variant<std::vector<provider_route>, api_error>
resolve_routes(const embed_request& request, const provider_directory& directory);

} // namespace emr

// Checking an answer against the fake's deterministic vectors: a list, a map of providers'
// lists (policy "all"), or a batch of sub-answers.
#pragma once

#include "tools/load_client.hpp"

#include <optional>
#include <string>

namespace emr::load {

/// The start of a body, for an error message.
std::string excerpt(const std::string& body);

/// Empty when a 200 answer holds exactly the expected vectors, else why not. Records the
/// answering provider, and a batch's sub-request statuses, in `r`.
std::string check_answer(const caller& c, const std::string& body,
                         const std::optional<expectation>& expect, result& r);

} // namespace emr::load

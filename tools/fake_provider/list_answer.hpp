// The list answer Voyage and OpenAI share: {"object":"list","data":[{..."embedding"...}],...}.
#pragma once

#include "tools/fake_provider/embed_job.hpp"
#include "tools/fake_provider/faults.hpp"

#include <string>

namespace emr::fake {

/// Where the two providers' lists differ.
struct list_layout {
  bool index_before_embedding = false; ///< OpenAI: {"object","index","embedding"}
  bool prompt_tokens = false;          ///< OpenAI: usage holds prompt_tokens too
};

/// The answer's vectors are the fake's; `shape` drops, renumbers, unindexes or poisons a row.
std::string render_list(const embed_job& job, malformed shape, list_layout layout);

} // namespace emr::fake

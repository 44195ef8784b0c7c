// One vector in the encodings the providers answer with: JSON floats, quantized integers, or
// base64 of either (providers.md §1, §2, §3).
#pragma once

#include "tools/fake_provider/embed_job.hpp"

#include <string>
#include <vector>

namespace emr::fake {

/// Appends `[v0,v1,...]`; a NaN is written as JavaScript's `NaN`, as the "nan" fault wants.
void append_float_array(std::string& out, const std::vector<float>& v);

/// Appends `v` as `enc` asks: a JSON array of floats or integers, or a base64 string.
void append_embedding(std::string& out, const std::vector<float>& v, encoding enc);

} // namespace emr::fake

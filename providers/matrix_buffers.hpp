#pragma once
// Storage for the matrices decoded from upstream answers, kept from one call to the next. A full
// batch's matrix (128 rows of 1,024 floats: 512 KiB) mapped fresh pages for each call and faulted
// every one in while its answer was decoded: 128 page faults, 1.5 ms of one call's way to its
// callers. A buffer given back once the last of its callers is answered serves a later call with
// its pages already in memory.

#include "providers/kept_buffers.hpp"
#include "providers/provider.hpp"

#include <memory>
#include <vector>

namespace emr {

using matrix_buffers = kept_buffers<std::vector<float>>;

/// The buffers every upstream call of this process decodes into: 16 MiB of them at most, a full
/// burst's matrices at 1,024 dimensions twice over.
matrix_buffers& decoded_matrix_buffers();

/// `matrix` as callers share it: its values go back to `buffers` when the last holder lets go.
std::shared_ptr<const embedding_matrix> share_matrix(embedding_matrix matrix,
                                                     matrix_buffers& buffers);

} // namespace emr

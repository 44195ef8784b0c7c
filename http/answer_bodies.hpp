#pragma once
// The bodies of large answers, kept from one answer to the next. A bulk caller's answer (2,048
// vectors of 256 floats in base64: 2.8 MB) was mapped fresh and faulted in page by page for every
// answer: a fifth of emr's CPU under such load. render_outcome takes a body from here, and a
// deferred answer gives it back once written.

#include "providers/kept_buffers.hpp"

#include <string>

namespace emr {

/// Bodies of 256 KiB (the mmap threshold `emr serve` sets) and more, 32 MiB of them at most.
/// Their pages fault in as written: a body's room is the most its vectors can take, and JSON
/// floats seldom take it all.
kept_buffers<std::string>& answer_bodies();

} // namespace emr

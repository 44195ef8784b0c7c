#pragma once
// Storage for the matrices decoded from upstream answers, kept from one call to the next. A full
// batch's matrix (128 rows of 1,024 floats: 512 KiB) is past the mmap threshold `emr serve` sets,
// so each call mapped fresh pages and faulted every one in while its answer was decoded: 128 page
// faults, at 11-12 us each on the 2-core VMs emr is measured on, 1.5 ms of one call's way to its
// callers. A buffer given back once the last of its callers is answered serves a later call with
// its pages already in memory.

#include "providers/provider.hpp"

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace emr {

class matrix_buffers {
public:
  /// Buffers smaller than `smallest_kept_bytes` come from the allocator's arenas, which keep
  /// their pages anyway; together those kept take at most `most_kept_bytes`.
  matrix_buffers(std::size_t most_kept_bytes, std::size_t smallest_kept_bytes);

  /// The buffers every upstream call of this process decodes into: 16 MiB of them at most, a
  /// full burst's matrices at 1,024 dimensions twice over.
  static matrix_buffers& process_wide();

  /// `floats` zeroes, in the smallest kept buffer that holds them, or in a new one; fewer than
  /// `smallest_kept_bytes` take no kept buffer.
  std::vector<float> take(std::size_t floats);
  /// Keeps `buffer` for a later take. Past the bound, the smallest buffers go first: a large
  /// matrix is the one whose pages cost most to fault in again.
  void give_back(std::vector<float> buffer);
  /// What the kept buffers take.
  std::size_t kept_bytes() const;

private:
  const std::size_t most_kept_bytes_, smallest_kept_bytes_;
  mutable std::mutex mutex_;
  std::multimap<std::size_t, std::vector<float>> kept_; ///< by capacity in floats
  std::size_t kept_bytes_ = 0;
};

/// `matrix` as callers share it: its values go back to `buffers` when the last holder lets go.
std::shared_ptr<const embedding_matrix> share_matrix(embedding_matrix matrix,
                                                     matrix_buffers& buffers);

} // namespace emr

#pragma once
// Large buffers kept from one use to the next, with their pages in memory. A block past the mmap
// threshold `emr serve` sets (256 KiB) is mapped fresh for each use and unmapped when freed, so
// every use faulted each of its pages in again: 11-15 us a page on the 2-core VMs emr is
// measured on, well under 1 us on bare metal. Given back once used, such a buffer serves a later
// use of its size or less for the cost of writing it. Smaller blocks come from the allocator's
// arenas, which keep their pages anyway.

#include "providers/fresh_pages.hpp"

#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

namespace emr {

/// `Buffer`: a contiguous container with reserve, capacity, clear and data (std::vector,
/// std::string).
template <class Buffer> class kept_buffers {
public:
  using value_type = typename Buffer::value_type;

  /// Buffers smaller than `smallest_kept_bytes` are not kept; together those kept take at most
  /// `most_kept_bytes`. `map_in`: a new buffer's pages are mapped in at once, for a user that
  /// writes it whole (one call costs less than a fault a page); else they fault in as written,
  /// and what the user leaves unwritten costs nothing.
  kept_buffers(std::size_t most_kept_bytes, std::size_t smallest_kept_bytes, bool map_in)
      : most_kept_bytes_(most_kept_bytes), smallest_kept_bytes_(smallest_kept_bytes),
        map_in_(map_in) {}

  /// An empty buffer with room for `n` values: the smallest kept one that has it, or a new one.
  /// One more than four times that large stays for a larger use: a buffer taken may never come
  /// back (an answer httplib writes, say), and a small use would then cost the pool its largest.
  Buffer take(std::size_t n) {
    Buffer buffer;
    // A small buffer (a lone caller's) comes from the arenas, its pages most likely in memory
    // already: no lock, and no system call to map them.
    if (bytes(n) < smallest_kept_bytes_) {
      buffer.reserve(n);
      return buffer;
    }
    {
      std::lock_guard guard{mutex_};
      if (auto fit = kept_.lower_bound(n); fit != kept_.end() && fit->first / 4 <= n) {
        buffer = std::move(fit->second);
        kept_bytes_ -= bytes(fit->first);
        kept_.erase(fit);
      }
    }
    if (buffer.capacity() < n) {
      buffer.reserve(n);
      if (map_in_)
        map_in_for_writing(buffer.data(), bytes(n));
    }
    return buffer;
  }

  /// Keeps `buffer` for a later take. Past the bound, the smallest go first: a large buffer is
  /// the one whose pages cost most to fault in again.
  void give_back(Buffer&& given) {
    Buffer buffer{std::move(given)}; // freed here when not kept
    auto n = buffer.capacity();
    if (bytes(n) < smallest_kept_bytes_ || bytes(n) > most_kept_bytes_)
      return;
    buffer.clear();
    std::vector<Buffer> dropped; // freed once the lock is released
    std::lock_guard guard{mutex_};
    kept_bytes_ += bytes(n);
    kept_.emplace(n, std::move(buffer));
    while (kept_bytes_ > most_kept_bytes_) {
      auto smallest = kept_.begin();
      kept_bytes_ -= bytes(smallest->first);
      dropped.push_back(std::move(smallest->second));
      kept_.erase(smallest);
    }
  }

  /// What the kept buffers take.
  std::size_t kept_bytes() const {
    std::lock_guard guard{mutex_};
    return kept_bytes_;
  }

private:
  static std::size_t bytes(std::size_t n) { return n * sizeof(value_type); }

  const std::size_t most_kept_bytes_, smallest_kept_bytes_;
  const bool map_in_;
  mutable std::mutex mutex_;
  std::multimap<std::size_t, Buffer> kept_; ///< by capacity in values
  std::size_t kept_bytes_ = 0;
};

} // namespace emr

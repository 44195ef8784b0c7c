#pragma once
// Memory for the embedding cache's full slabs, written once ahead of need by a thread that runs
// only while the machine is otherwise idle.
//
// On the VMs emr is measured on, the first write to a page the process has not written before
// costs 10-16 us however the page was mapped in: MADV_POPULATE_WRITE maps it for 0.7 us, and the
// first write still costs 10 us, against 0.2 us for a page written before (4,096 pages timed,
// 2026-12-01). A cache that grows takes a fresh page for each 1,024-float vector it keeps, and it
// keeps them on the way to the callers' answers: side by side at 500 callers a burst, a growing
// cache cost the p50 6 ms more than a full one, whose new vectors take the slots of evicted ones.
// Blocks written ahead move that cost to idle time, and a freed slab's block is used again.
//
// Each block is mapped on its own, not cut from a transparent huge page. Huge pages took a
// fifth of the faults, but a block unmapped alone only splits its huge page's mapping: the
// kernel keeps the whole 2 MiB until memory runs short, while the process's RSS no longer counts
// it (32 huge pages cut to one block each: RSS 11 MB, 64 MiB still taken; 2026-12-02).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

namespace emr {

class prepared_blocks {
public:
  static constexpr std::size_t block_bytes = 256 * 1024;

  /// Keeps up to `most_ready` blocks ready; with `write_ahead`, a thread of idle priority writes
  /// them from the first take on, else only blocks given back are kept.
  explicit prepared_blocks(std::size_t most_ready, bool write_ahead = true);
  ~prepared_blocks();
  prepared_blocks(const prepared_blocks&) = delete;
  prepared_blocks& operator=(const prepared_blocks&) = delete;

  /// A block of block_bytes: a ready one if there is one, else one mapped in now. Throws
  /// std::bad_alloc when the system has no memory left.
  void* take();
  /// A block from take(): kept ready for the next if there is room, else unmapped.
  void give_back(void* block);
  /// Blocks ready now.
  std::size_t ready() const;

private:
  void write_ahead();

  std::size_t most_ready_;
  bool write_ahead_;
  // Slots rather than a locked list: the writer runs at idle priority, and a lock it held when
  // the scheduler took its core away would stall the request that wants a block.
  std::unique_ptr<std::atomic<void*>[]> ready_; ///< most_ready_ slots; null: empty
  std::atomic<std::uint32_t> wanted_{0};        ///< bumped by each take; the writer sleeps on it
  std::atomic<bool> stopping_{false};
  std::once_flag started_;
  std::thread writer_;
};

} // namespace emr

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
// The writer cuts them from transparent huge pages, 8 to a page: one fault maps in 2 MiB, where
// 4 KiB pages take 512. Side by side, a burst of 500 that grows the cache took 110-200 page faults
// in emr against 610-730, and 4-5 ms less of its CPU (2026-12-02). What remains is the kernel
// zeroing memory the VM has not used lately, 8-17 us per 4 KiB here, at the writer's idle priority.

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
  static constexpr std::size_t huge_page_bytes = 2 * 1024 * 1024;
  static constexpr std::size_t blocks_per_huge_page = huge_page_bytes / block_bytes;
  /// The most blocks the writer holds cut from its last huge page and not yet in a slot.
  static constexpr std::size_t most_spares = blocks_per_huge_page - 1;

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
  /// The most memory the blocks ready and the writer's cut but not yet ready ones hold at once.
  std::size_t most_bytes_held() const;

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

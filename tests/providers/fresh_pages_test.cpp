// prewrite_heap: a thread that has written part of its heap ahead takes pages already in memory
// for its next allocations; one that has not takes pages that are not.

#include "providers/fresh_pages.hpp"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

namespace emr::fresh_pages_tests {

// Pages of a 192 KiB allocation, made on a thread of its own, that are in memory before anything
// is written to it, from its second page on (glibc writes a block's header in its first).
std::size_t resident_pages_of_a_new_block(std::size_t prewritten, std::size_t& pages) {
  std::size_t resident = 0;
  std::thread([&] {
    prewrite_heap(prewritten);
    constexpr std::size_t bytes = 192 * 1024;
    auto* block = static_cast<char*>(std::malloc(bytes));
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    auto start = (reinterpret_cast<std::uintptr_t>(block) + page) / page * page;
    auto end = (reinterpret_cast<std::uintptr_t>(block) + bytes) / page * page;
    pages = (end - start) / page;
    std::vector<unsigned char> in_memory(pages);
    if (::mincore(reinterpret_cast<void*>(start), end - start, in_memory.data()) == 0)
      for (auto r : in_memory)
        resident += r & 1;
    std::free(block);
  }).join();
  return resident;
}

TEST(prewrite_heap, a_threads_next_allocations_take_pages_already_written) {
#ifdef EMR_SANITIZED
  GTEST_SKIP() << "the sanitizers' allocator is not glibc's, and prewrite_heap does nothing";
#endif
  // As `emr serve` sets it: blocks below 256 KiB come from the arenas, which keep what is free.
  tune_the_allocator();
  std::size_t pages = 0;
  // First on a fresh arena, with nothing written ahead (a finished thread's arena goes to the
  // next thread, so the order matters).
  EXPECT_EQ(resident_pages_of_a_new_block(0, pages), 0u) << "fresh pages, not yet written";
  ASSERT_GT(pages, 40u);
  EXPECT_EQ(resident_pages_of_a_new_block(1 << 20, pages), pages)
      << "taken from the megabyte written ahead";
}

} // namespace emr::fresh_pages_tests

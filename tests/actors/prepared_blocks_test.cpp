// prepared_blocks alone: blocks given back are kept up to the most ready and unmapped beyond it;
// the idle writer fills every slot from the first take on, with blocks whose pages are in memory.
// (That they were written, not just mapped in, shows only in what the first write costs on a VM:
// docs/performance.md has the timing.)

#include "actors/prepared_blocks.hpp"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

namespace emr::prepared_blocks_tests {

constexpr std::size_t pages = prepared_blocks::block_bytes / 4096;

bool mapped(void* block) {
  std::vector<unsigned char> resident(pages);
  return ::mincore(block, prepared_blocks::block_bytes, resident.data()) == 0;
}

std::size_t resident_pages(void* block) {
  std::vector<unsigned char> resident(pages);
  if (::mincore(block, prepared_blocks::block_bytes, resident.data()) != 0)
    return 0;
  std::size_t n = 0;
  for (auto r : resident)
    n += r & 1;
  return n;
}

TEST(prepared_blocks, a_block_given_back_is_kept_up_to_the_most_ready_and_unmapped_beyond) {
  ASSERT_EQ(::sysconf(_SC_PAGESIZE), 4096);
  prepared_blocks blocks{1, false};
  auto* a = blocks.take();
  auto* b = blocks.take();
  ASSERT_NE(a, b);
  std::memset(a, 1, prepared_blocks::block_bytes);
  std::memset(b, 2, prepared_blocks::block_bytes);
  EXPECT_EQ(blocks.ready(), 0u) << "nothing is written ahead";
  blocks.give_back(a);
  EXPECT_EQ(blocks.ready(), 1u);
  blocks.give_back(b);
  EXPECT_EQ(blocks.ready(), 1u);
  EXPECT_FALSE(mapped(b)) << "no room for it: unmapped";
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(blocks.take(), a) << "the kept block is the next one taken";
  EXPECT_EQ(blocks.ready(), 0u);
  blocks.give_back(a);
}

TEST(prepared_blocks, the_writer_fills_every_slot_with_blocks_whose_pages_are_in_memory) {
  prepared_blocks blocks{4};
  EXPECT_EQ(blocks.ready(), 0u) << "no writing before the first take";
  auto* first = blocks.take();
  // The writer runs at idle priority: it fills the slots once a core is free, however busy the
  // machine running the tests is for a while.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  while (blocks.ready() < 4 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  ASSERT_EQ(blocks.ready(), 4u);
  std::vector<void*> taken;
  for (int i = 0; i < 4; ++i) {
    taken.push_back(blocks.take());
    EXPECT_EQ(resident_pages(taken.back()), pages) << "block " << i;
  }
  blocks.give_back(first);
  for (auto* block : taken)
    blocks.give_back(block);
}

} // namespace emr::prepared_blocks_tests

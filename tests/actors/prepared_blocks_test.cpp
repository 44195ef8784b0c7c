// prepared_blocks alone: blocks given back are kept up to the most ready and unmapped beyond it;
// the idle writer fills every slot from the first take on, with blocks whose pages are in memory.
// (That they were written, not just mapped in, shows only in what the first write costs on a VM:
// docs/performance.md has the timing.) Where the kernel offers transparent huge pages, the writer
// cuts its blocks from them.

#include "actors/prepared_blocks.hpp"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
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

// The kernel's transparent huge page mode: "always", "madvise" or "never".
std::string huge_page_mode() {
  std::ifstream in{"/sys/kernel/mm/transparent_hugepage/enabled"};
  std::string modes;
  std::getline(in, modes);
  auto open = modes.find('['), close = modes.find(']');
  return open == std::string::npos || close == std::string::npos
             ? "never"
             : modes.substr(open + 1, close - open - 1);
}

// The kB of huge pages in the mapping that holds `address`, from /proc/self/smaps.
long huge_page_kib_around(const void* address) {
  auto at = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream smaps{"/proc/self/smaps"};
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t start = 0, end = 0;
    char dash = 0;
    std::istringstream range{line};
    if (range >> std::hex >> start >> dash >> end && dash == '-') {
      inside = start <= at && at < end;
      continue;
    }
    if (inside && line.rfind("AnonHugePages:", 0) == 0)
      return std::stol(line.substr(line.find(':') + 1));
  }
  return -1;
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

TEST(prepared_blocks, the_writer_cuts_its_blocks_from_huge_pages_where_the_kernel_has_them) {
  if (huge_page_mode() == "never")
    GTEST_SKIP() << "transparent huge pages are off on this machine";
  prepared_blocks blocks{prepared_blocks::blocks_per_huge_page};
  blocks.give_back(blocks.take()); // starts the writer; the block given back is one of its own
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  while (blocks.ready() < prepared_blocks::blocks_per_huge_page &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  ASSERT_EQ(blocks.ready(), prepared_blocks::blocks_per_huge_page);
  std::vector<void*> taken;
  std::size_t on_huge_pages = 0;
  for (std::size_t i = 0; i < prepared_blocks::blocks_per_huge_page; ++i) {
    taken.push_back(blocks.take());
    on_huge_pages += huge_page_kib_around(taken.back()) >= 2048;
  }
  // One slot took the block given back (mapped in 4 KiB pages); the writer filled the others
  // from one huge page.
  EXPECT_GE(on_huge_pages, prepared_blocks::blocks_per_huge_page - 1);
  for (auto* block : taken)
    blocks.give_back(block);
}

} // namespace emr::prepared_blocks_tests

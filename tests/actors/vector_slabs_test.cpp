// vector_slabs alone: a freed slot is taken again, a size's slabs grow with its use up to
// prepared blocks, a slab is freed when its last slot is, and what they take is what glibc
// allocates for them or a block.

#include "actors/vector_slabs.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace emr::vector_slabs_tests {

TEST(vector_slabs, a_sizes_slabs_grow_with_its_use_and_an_empty_one_is_freed) {
  constexpr std::size_t dims = 1024;
  prepared_blocks blocks{1, false};
  vector_slabs slabs{1 << 20, 100, blocks};
  ASSERT_EQ(slabs.most_slots(dims), 64u) << "256 KiB of 4 KiB vectors";
  EXPECT_EQ(slab_bytes(64, dims), 256u * 1024 + 272)
      << "a block; and 256 bytes of free list on the heap";
  EXPECT_EQ(slab_bytes(32, dims), 128u * 1024 + 16 + 144) << "half a block: on the heap";
  EXPECT_EQ(slabs.next_slab_bytes(dims), slab_bytes(8, dims)) << "an eighth to start with";
  std::vector<float*> taken;
  for (int i = 0; i < 8; ++i)
    taken.push_back(slabs.take(dims));
  EXPECT_EQ(slabs.bytes(), slab_bytes(8, dims));
  EXPECT_FALSE(slabs.has_room(dims));
  EXPECT_EQ(slabs.next_slab_bytes(dims), slab_bytes(8, dims)) << "as many as it holds";
  for (int i = 0; i < 8; ++i)
    taken.push_back(slabs.take(dims));
  EXPECT_EQ(slabs.next_slab_bytes(dims), slab_bytes(16, dims));
  for (int i = 0; i < 16 + 32 + 64; ++i)
    taken.push_back(slabs.take(dims));
  EXPECT_EQ(slabs.next_slab_bytes(dims), slab_bytes(64, dims)) << "never past the most";

  // A slot in the middle of a slab, given back, is the next one taken.
  auto* middle = taken[20];
  auto [begin, end] = slabs.slab_of(middle, dims);
  EXPECT_EQ(begin, taken[16]) << "the third slab, of 16 slots";
  EXPECT_EQ(end, taken[16] + 16 * dims);
  slabs.give_back(middle, dims);
  EXPECT_TRUE(slabs.has_room(dims));
  EXPECT_EQ(slabs.take(dims), middle);

  // The last 64-slot slab, all given back, is freed whole: its block is kept ready, and the next
  // full slab is that block again.
  auto before = slabs.bytes();
  auto* block = taken[taken.size() - 64];
  for (std::size_t i = taken.size() - 64; i < taken.size(); ++i)
    slabs.give_back(taken[i], dims);
  EXPECT_EQ(slabs.bytes(), before - slab_bytes(64, dims));
  EXPECT_FALSE(slabs.has_room(dims));
  EXPECT_EQ(blocks.ready(), 1u);
  EXPECT_EQ(slabs.take(dims), block);
  EXPECT_EQ(blocks.ready(), 0u);

  // Another size has slabs of its own.
  EXPECT_FALSE(slabs.has_room(256));
  slabs.take(256);
  EXPECT_TRUE(slabs.has_room(256));
  slabs.clear();
  EXPECT_EQ(slabs.bytes(), 0u);
}

TEST(vector_slabs, a_small_bound_gets_small_slabs_and_too_small_a_bound_none) {
  // Three slots and what their owner keeps for each fit, not four.
  prepared_blocks blocks{0, false};
  vector_slabs small{slab_bytes(3, 1024) + 3 * 100 + 4095, 100, blocks};
  EXPECT_EQ(small.most_slots(1024), 3u);
  EXPECT_EQ(small.next_slab_bytes(1024), slab_bytes(1, 1024)) << "an eighth, at least one slot";
  vector_slabs none{4100, 100, blocks};
  EXPECT_EQ(none.most_slots(1024), 0u);
  EXPECT_EQ(none.next_slab_bytes(1024), 0u);
  EXPECT_EQ(allocated_bytes(4096), 4112u);
  EXPECT_EQ(allocated_bytes(300 * 1024), 300u * 1024 + 4096);
}

} // namespace emr::vector_slabs_tests

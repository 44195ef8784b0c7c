// vector_slabs alone: slots of one size are reused, a slab is freed when its last slot is, and
// what they take is what glibc allocates for them.

#include "actors/vector_slabs.hpp"

#include <gtest/gtest.h>

#include <set>

namespace emr::vector_slabs_tests {

TEST(vector_slabs, a_freed_slot_is_taken_again_and_an_empty_slab_is_freed) {
  constexpr std::size_t dims = 1024; // 64 slots: 256 KiB, a block glibc maps on its own
  vector_slabs slabs{1 << 20, 100};
  EXPECT_EQ(slabs.slab_bytes(dims), 256u * 1024 + 4096) << "its header rounds it to a page more";
  std::set<float*> taken;
  for (int i = 0; i < 64; ++i)
    taken.insert(slabs.take(dims));
  EXPECT_EQ(taken.size(), 64u);
  EXPECT_EQ(slabs.bytes(), slabs.slab_bytes(dims)) << "one slab";
  EXPECT_FALSE(slabs.has_room(dims));
  auto* freed = *taken.begin();
  slabs.give_back(freed, dims);
  EXPECT_TRUE(slabs.has_room(dims));
  EXPECT_EQ(slabs.take(dims), freed);
  auto* next = slabs.take(dims);
  EXPECT_EQ(slabs.bytes(), 2 * slabs.slab_bytes(dims)) << "the 65th slot opened a second slab";
  slabs.give_back(next, dims);
  EXPECT_EQ(slabs.bytes(), slabs.slab_bytes(dims)) << "its only slot freed: the slab went";
  // Another size has slabs of its own.
  EXPECT_FALSE(slabs.has_room(256));
  slabs.take(256);
  EXPECT_TRUE(slabs.has_room(256));
  slabs.clear();
  EXPECT_EQ(slabs.bytes(), 0u);
}

TEST(vector_slabs, a_small_bound_gets_small_slabs_and_too_small_a_bound_none) {
  // Three slots and what their owner keeps for each fit, not four.
  vector_slabs small{allocated_bytes(3 * 4096) + 3 * 100 + 4095, 100};
  EXPECT_EQ(small.slab_bytes(1024), allocated_bytes(3 * 4096));
  vector_slabs none{4100, 100};
  EXPECT_EQ(none.slab_bytes(1024), 0u);
  EXPECT_EQ(allocated_bytes(4096), 4112u);
  EXPECT_EQ(allocated_bytes(300 * 1024), 300u * 1024 + 4096);
}

} // namespace emr::vector_slabs_tests

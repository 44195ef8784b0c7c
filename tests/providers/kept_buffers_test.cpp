// kept_buffers: a large buffer serves a later take once given back, within a bound that drops the
// smallest first; small ones are never kept. A decoded matrix gives its buffer back when the last
// holder lets go. map_in_for_writing: a block's pages are in memory before they are written.

#include "providers/fresh_pages.hpp"
#include "providers/kept_buffers.hpp"
#include "providers/matrix_buffers.hpp"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

namespace emr {
namespace {

constexpr std::size_t kib = 1024;

TEST(kept_buffers, a_buffer_given_back_serves_the_next_take_empty) {
  matrix_buffers buffers{1024 * kib, 64 * kib, true};
  auto first = buffers.take(32 * kib);
  EXPECT_TRUE(first.empty());
  ASSERT_GE(first.capacity(), 32 * kib);
  first.resize(32 * kib);
  first[7] = 1.5f;
  const float* storage = first.data();
  buffers.give_back(std::move(first));
  EXPECT_EQ(buffers.kept_bytes(), 128 * kib);
  auto second = buffers.take(16 * kib);
  EXPECT_EQ(second.data(), storage) << "the kept buffer holds the smaller matrix too";
  EXPECT_TRUE(second.empty());
  second.resize(16 * kib);
  EXPECT_TRUE(std::all_of(second.begin(), second.end(), [](float v) { return v == 0.0f; }));
  EXPECT_EQ(buffers.kept_bytes(), 0u);
  auto third = buffers.take(16 * kib);
  EXPECT_NE(third.data(), storage) << "a buffer is handed out once";
}

TEST(kept_buffers, the_smallest_that_fits_is_taken_and_one_too_small_is_not) {
  matrix_buffers buffers{1024 * kib, 64 * kib, true};
  auto large = buffers.take(64 * kib);
  auto small = buffers.take(20 * kib);
  const float* large_storage = large.data();
  const float* small_storage = small.data();
  buffers.give_back(std::move(large));
  buffers.give_back(std::move(small));
  EXPECT_EQ(buffers.take(30 * kib).data(), large_storage) << "the small one cannot hold it";
  EXPECT_NE(buffers.take(1 * kib).data(), small_storage) << "a lone caller's matrix: the arenas'";
  EXPECT_EQ(buffers.kept_bytes(), 80 * kib);
  EXPECT_EQ(buffers.take(16 * kib).data(), small_storage);
}

TEST(kept_buffers, one_more_than_four_times_the_size_asked_for_stays_for_a_larger_use) {
  matrix_buffers buffers{4096 * kib, 64 * kib, true};
  auto large = buffers.take(256 * kib); // 1 MiB
  const float* storage = large.data();
  buffers.give_back(std::move(large));
  auto small = buffers.take(48 * kib);
  EXPECT_NE(small.data(), storage) << "a use that may never give it back";
  EXPECT_EQ(buffers.kept_bytes(), 1024 * kib);
  EXPECT_EQ(buffers.take(64 * kib).data(), storage) << "a quarter of it: taken";
}

TEST(kept_buffers, past_the_bound_the_smallest_go_and_small_ones_are_never_kept) {
  matrix_buffers buffers{512 * kib, 64 * kib, true};
  buffers.give_back(std::vector<float>(8 * kib)); // 32 KiB: the arenas keep those
  EXPECT_EQ(buffers.kept_bytes(), 0u);
  buffers.give_back(std::vector<float>(1024 * kib)); // 4 MiB: more than the bound
  EXPECT_EQ(buffers.kept_bytes(), 0u);
  auto a = std::vector<float>(32 * kib); // 128 KiB each
  auto b = std::vector<float>(48 * kib); // 192 KiB
  auto c = std::vector<float>(64 * kib); // 256 KiB
  const float* b_storage = b.data();
  const float* c_storage = c.data();
  buffers.give_back(std::move(a));
  buffers.give_back(std::move(b));
  buffers.give_back(std::move(c));
  EXPECT_EQ(buffers.kept_bytes(), 448 * kib) << "a went to keep the bound";
  EXPECT_EQ(buffers.take(40 * kib).data(), b_storage);
  EXPECT_EQ(buffers.take(16 * kib).data(), c_storage);
  EXPECT_EQ(buffers.kept_bytes(), 0u);
}

TEST(kept_buffers, a_string_is_counted_in_bytes_and_its_unwritten_pages_are_left_unmapped) {
  constexpr std::size_t mib = 1024 * kib;
  kept_buffers<std::string> bodies{64 * mib, 256 * kib, false};
  // Where transparent huge pages are always on, glibc's header write faults in a whole 2 MiB page.
  if (std::ifstream thp{"/sys/kernel/mm/transparent_hugepage/enabled"}; thp) {
    std::string modes;
    std::getline(thp, modes);
    if (modes.find("[always]") != std::string::npos)
      GTEST_SKIP() << "transparent huge pages are always on: a fresh block is never unmapped";
  }
  // Past glibc's largest mmap threshold (32 MiB), so that the block is mapped fresh.
  auto body = bodies.take(40 * mib);
  EXPECT_TRUE(body.empty());
  ASSERT_GE(body.capacity(), 40 * mib);
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  // From 64 KiB in: an allocator may write its first page (glibc its header, ASan a fill pattern).
  auto first_page =
      (reinterpret_cast<std::uintptr_t>(body.data()) + 64 * kib + page - 1) / page * page;
  std::vector<unsigned char> in(64);
  ASSERT_EQ(::mincore(reinterpret_cast<void*>(first_page), 64 * page, in.data()), 0);
  EXPECT_EQ(std::count_if(in.begin(), in.end(), [](unsigned char p) { return p & 1; }), 0)
      << "no page is in memory until written";
  body.assign(300 * kib, 'x');
  const char* storage = body.data();
  auto capacity = body.capacity();
  bodies.give_back(std::move(body));
  EXPECT_EQ(bodies.kept_bytes(), capacity);
  EXPECT_EQ(bodies.take(12 * mib).data(), storage) << "more than a quarter of it";
  bodies.give_back(std::string(200 * kib, 'y'));
  EXPECT_EQ(bodies.kept_bytes(), 0u) << "below 256 KiB: the arenas keep those";
}

TEST(kept_buffers, a_shared_matrix_gives_its_values_back_when_the_last_holder_lets_go) {
  matrix_buffers buffers{1024 * kib, 64 * kib, true};
  embedding_matrix decoded;
  decoded.rows = 2;
  decoded.dims = 16 * kib;
  decoded.values = buffers.take(32 * kib);
  decoded.values.resize(32 * kib);
  const float* storage = decoded.values.data();
  auto shared = share_matrix(std::move(decoded), buffers);
  auto held_by_a_caller = shared;
  EXPECT_EQ(shared->row(1), storage + 16 * kib);
  shared.reset();
  EXPECT_EQ(buffers.kept_bytes(), 0u) << "a caller still holds it";
  held_by_a_caller.reset();
  EXPECT_EQ(buffers.kept_bytes(), 128 * kib);
  EXPECT_EQ(buffers.take(32 * kib).data(), storage);
}

TEST(fresh_pages, a_block_mapped_in_is_in_memory_before_it_is_written) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  constexpr std::size_t pages = 16;
  auto* block = static_cast<char*>(
      ::mmap(nullptr, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(block, MAP_FAILED);
  auto resident = [&] {
    unsigned char in[pages];
    EXPECT_EQ(::mincore(block, pages * page, in), 0);
    return std::count_if(in, in + pages, [](unsigned char p) { return p & 1; });
  };
  EXPECT_EQ(resident(), 0);
  if (::madvise(block, 0, MADV_POPULATE_WRITE) != 0)
    GTEST_SKIP() << "this kernel has no MADV_POPULATE_WRITE (Linux 5.14)";
  // From the middle of the first page to the middle of the last: only the pages wholly inside.
  map_in_for_writing(block + page / 2, (pages - 1) * page);
  EXPECT_EQ(resident(), static_cast<long>(pages - 2));
  ::munmap(block, pages * page);
}

} // namespace
} // namespace emr

#include "providers/fresh_pages.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

namespace emr {

void map_in_for_writing(void* data, std::size_t bytes) {
  static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  auto start = (reinterpret_cast<std::uintptr_t>(data) + page - 1) / page * page;
  auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) / page * page;
  if (end > start)
    ::madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_WRITE);
}

void tune_the_allocator() {
  constexpr int large_block_bytes = 256 * 1024;
  constexpr int kept_free_bytes = 32 << 20;
  mallopt(M_MMAP_THRESHOLD, large_block_bytes);
  mallopt(M_TRIM_THRESHOLD, kept_free_bytes);
}

void prewrite_heap(std::size_t bytes) {
#ifdef EMR_SANITIZED
  // AddressSanitizer's allocator replaces glibc's and keeps freed blocks in quarantine: each of
  // the 1,024 HTTP threads would hold its megabyte apart (450 MB in all), and writing them held a
  // fresh server's first answer back for seconds, past a load balancer's health check.
  (void)bytes;
#else
  // Below the 256 KiB from which glibc maps blocks apart from the heap, and freed only once all
  // are written, so that they come from the arena's top and merge back into it.
  constexpr std::size_t piece = 128 * 1024;
  static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<void*> pieces;
  pieces.reserve(bytes / piece + 1);
  for (std::size_t done = 0; done < bytes; done += piece) {
    auto* p = static_cast<char*>(std::malloc(piece));
    if (!p)
      break;
    for (std::size_t at = 0; at < piece; at += page)
      reinterpret_cast<volatile char*>(p)[at] = 0;
    pieces.push_back(p);
  }
  for (auto* p : pieces)
    std::free(p);
#endif
}

} // namespace emr

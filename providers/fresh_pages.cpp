#include "providers/fresh_pages.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace emr {

void map_in_for_writing(void* data, std::size_t bytes) {
  static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  auto start = (reinterpret_cast<std::uintptr_t>(data) + page - 1) / page * page;
  auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) / page * page;
  if (end > start)
    ::madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_WRITE);
}

} // namespace emr

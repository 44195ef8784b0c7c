#pragma once
// Fresh memory is mapped in a page at a time as it is first written, and on the 2-core VMs emr is
// measured on each of those page faults costs 11-15 us (well under 1 us on bare metal). Mapped in
// with one call before it is written, a block's pages cost about 9 us each there, the VM's own
// first touch being what is left. Memory kept and used again costs nothing more: see
// kept_buffers and the allocator's settings in cli/serve.cpp.

#include <cstddef>

namespace emr {

/// Maps in, ready to be written, the pages wholly inside [data, data + bytes). Only for a block
/// about to be written whole. Without MADV_POPULATE_WRITE (Linux before 5.14) the pages fault in
/// as they are written, as before.
void map_in_for_writing(void* data, std::size_t bytes);

/// Writes `bytes` of the calling thread's heap and frees them again. glibc keeps free memory at
/// the top of a thread's arena (up to the trim threshold `emr serve` sets), so the thread's next
/// allocations take pages already written instead of faulting them in one by one. On the VMs
/// emr is measured on, a fresh server's first burst of 1,000 callers took 6,300 page faults with
/// none written ahead and 3,700 with 1 MiB a thread; its p50 fell from 1.5x the direct path's to
/// about 1x (docs/performance.md). Does nothing in a sanitized build, whose allocator is not
/// glibc's.
void prewrite_heap(std::size_t bytes);

} // namespace emr

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

/// glibc raises its mmap threshold to the largest block freed so far (argon2's 19 MiB matrix, a
/// large upstream answer). Blocks below it come from the per-thread arenas and stay resident there
/// once freed, so memory ratchets up with every verification and burst. A fixed threshold maps and
/// unmaps such blocks whole.
///
/// The small blocks a burst frees (its requests, the answers it rendered) are kept instead: an
/// arena gave back what was free at its top beyond 128 KiB, and the next burst faulted those pages
/// in again, at about 10 us a page on the VMs emr is measured on (6 % of emr's CPU in a burst of
/// 1,000). An arena now keeps up to 32 MiB of them, no more than a burst used.
void tune_the_allocator();

/// Writes `bytes` of the calling thread's heap and frees them again. glibc keeps free memory at
/// the top of a thread's arena (up to the trim threshold tune_the_allocator sets), so the thread's
/// next allocations take pages already written instead of faulting them in one by one. On the VMs
/// emr is measured on, a fresh server's first burst of 1,000 callers took 5,200 page faults with
/// none written ahead, 2,500 with 1 MiB a thread and 690 with 2 MiB (docs/performance.md). Does
/// nothing in a sanitized build, whose allocator is not glibc's.
void prewrite_heap(std::size_t bytes);

} // namespace emr

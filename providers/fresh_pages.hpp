#pragma once
// Fresh memory is mapped in a page at a time as it is first written, and each of those page faults
// costs 11-12 us on the 2-core VMs emr is measured on (well under 1 us on bare metal): 128 faults,
// 1.5 ms, for one 512 KiB matrix. Asked to map a block's pages in one call, the kernel takes
// about 1 us a page there.

#include <cstddef>

namespace emr {

/// Maps in, ready to be written, the pages wholly inside [data, data + bytes). Only for a block
/// about to be written whole. Without MADV_POPULATE_WRITE (Linux before 5.14) the pages fault in
/// as they are written, as before.
void map_in_for_writing(void* data, std::size_t bytes);

} // namespace emr

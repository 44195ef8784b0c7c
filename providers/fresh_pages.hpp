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

} // namespace emr

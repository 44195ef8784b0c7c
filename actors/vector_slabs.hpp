#pragma once
// Where the embedding cache keeps its vectors: slabs of equal slots, one slab per allocation.
// A vector evicted frees a slot that the next vector of its size takes, so the cache takes the
// memory it counts. Kept on the heap one by one, the vectors sat among the short-lived
// allocations of requests in flight, and the space eviction freed was fragments: 3-5 MiB beyond a
// 32 MiB bound in the bench. A size's slabs grow with its use, so that a size seldom asked for
// takes little, up to blocks of 256 KiB apart from the heap: those of more than half a block are
// prepared blocks (actors/prepared_blocks.hpp), written ahead while the machine idles. Not
// thread-safe: each cache shard owns one, under its lock.

#include "actors/prepared_blocks.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

namespace emr {

/// What glibc takes for one block of `bytes`: heap blocks carry an 8-byte header and round to 16;
/// blocks of 256 KiB and more are mapped alone, with a 16-byte header, rounded to pages.
std::size_t allocated_bytes(std::size_t bytes);
/// What a slab of `slots` vectors of `dims` floats takes: the vectors (a prepared block when they
/// fill more than half of one) and its list of free slots.
std::size_t slab_bytes(std::size_t slots, std::size_t dims);

/// Frees a slab's vectors where they came from: a prepared block goes back to be used again.
struct slab_memory {
  prepared_blocks* blocks = nullptr; ///< none: the heap
  void operator()(float* floats) const {
    if (blocks)
      blocks->give_back(floats);
    else
      delete[] floats;
  }
};

class vector_slabs {
public:
  /// A full slab and the `per_slot_bytes` its vectors' owner keeps for each (the cache's
  /// bookkeeping) take at most `most_bytes` (a shard's part of the cache's bound), so that a
  /// small cache still holds vectors, in smaller slabs. Slabs of more than half a block come
  /// from `blocks`, which must outlive them.
  vector_slabs(std::size_t most_bytes, std::size_t per_slot_bytes, prepared_blocks& blocks);

  /// The most slots a slab of `dims`-float vectors has: as many as a block holds (one, for a
  /// vector larger than a block), or what most_bytes allows; 0 when not even one fits.
  std::size_t most_slots(std::size_t dims) const;
  /// What the slab that take() would add for `dims` floats takes, as the allocator counts it:
  /// as many slots as that size holds already, at least an eighth of most_slots and at most all.
  std::size_t next_slab_bytes(std::size_t dims) const;
  /// Whether a slab of `dims`-float slots has one free.
  bool has_room(std::size_t dims) const;
  /// A slot for `dims` floats: a free one when there is one, else one of a new slab.
  float* take(std::size_t dims);
  /// Frees the slot; a slab left empty is freed whole.
  void give_back(float* slot, std::size_t dims);
  /// Where the slab that holds `slot` starts and ends.
  std::pair<const float*, const float*> slab_of(const float* slot, std::size_t dims) const;
  /// What every slab takes together.
  std::size_t bytes() const { return bytes_; }
  void clear();

private:
  struct slab {
    std::unique_ptr<float[], slab_memory> floats;
    std::size_t slots = 0;
    std::vector<std::uint32_t> free; ///< slot numbers
  };
  struct size_class {
    std::size_t slots = 0;              ///< in every slab together
    std::map<const float*, slab> slabs; ///< by where they start
    /// The slabs with a free slot: a full cache frees and takes a slot for every vector it
    /// stores, and looking for room slab by slab was a twentieth of its CPU under bulk load.
    std::set<const float*> with_room;
  };
  std::size_t next_slab_slots(std::size_t dims) const;
  const slab* home_of(const float* slot, std::size_t dims) const;

  std::size_t most_bytes_;
  std::size_t per_slot_bytes_;
  prepared_blocks* blocks_;
  std::map<std::size_t, size_class> by_dims_;
  std::size_t bytes_ = 0;
};

} // namespace emr

#include "actors/vector_slabs.hpp"

#include "providers/fresh_pages.hpp"

#include <algorithm>

namespace emr {

namespace {

// Blocks this large are mapped on their own by glibc (tune_the_allocator sets its threshold).
constexpr std::size_t mapped_block = 256 * 1024;
constexpr std::size_t page = 4096;

std::size_t slot_floats(std::size_t dims) {
  return std::max<std::size_t>(1, dims);
}

// Vectors of more than half a block take a prepared one: a size's full slabs, and the last step
// of its growth towards them.
bool in_block(std::size_t vector_bytes) {
  return vector_bytes > prepared_blocks::block_bytes / 2 &&
         vector_bytes <= prepared_blocks::block_bytes;
}

} // namespace

std::size_t allocated_bytes(std::size_t bytes) {
  return bytes >= mapped_block ? (bytes + 16 + page - 1) / page * page : (bytes + 8 + 15) / 16 * 16;
}

// A slab's vectors and its list of free slots.
std::size_t slab_bytes(std::size_t slots, std::size_t dims) {
  auto vectors = slots * slot_floats(dims) * sizeof(float);
  return (in_block(vectors) ? prepared_blocks::block_bytes : allocated_bytes(vectors)) +
         allocated_bytes(slots * sizeof(std::uint32_t));
}

vector_slabs::vector_slabs(std::size_t most_bytes, std::size_t per_slot_bytes,
                           prepared_blocks& blocks)
    : most_bytes_(most_bytes), per_slot_bytes_(per_slot_bytes), blocks_(&blocks) {}

std::size_t vector_slabs::most_slots(std::size_t dims) const {
  auto slot = slot_floats(dims) * sizeof(float);
  auto slots = std::min(std::max<std::size_t>(1, prepared_blocks::block_bytes / slot),
                        most_bytes_ / (slot + per_slot_bytes_));
  while (slots > 0 && slab_bytes(slots, dims) + slots * per_slot_bytes_ > most_bytes_)
    --slots;
  return slots;
}

std::size_t vector_slabs::next_slab_slots(std::size_t dims) const {
  auto most = most_slots(dims);
  auto c = by_dims_.find(dims);
  auto held = c == by_dims_.end() ? 0 : c->second.slots;
  return std::min(most, std::max({held, most / 8, std::size_t{1}}));
}

std::size_t vector_slabs::next_slab_bytes(std::size_t dims) const {
  auto slots = next_slab_slots(dims);
  return slots == 0 ? 0 : slab_bytes(slots, dims);
}

bool vector_slabs::has_room(std::size_t dims) const {
  auto c = by_dims_.find(dims);
  return c != by_dims_.end() && !c->second.with_room.empty();
}

float* vector_slabs::take(std::size_t dims) {
  auto floats = slot_floats(dims);
  auto slots = next_slab_slots(dims);
  auto& c = by_dims_[dims];
  if (!c.with_room.empty()) {
    auto& s = c.slabs.at(*c.with_room.begin());
    auto slot = s.free.back();
    s.free.pop_back();
    if (s.free.empty())
      c.with_room.erase(c.with_room.begin());
    return s.floats.get() + slot * floats;
  }
  slab fresh;
  auto vector_bytes = slots * floats * sizeof(float);
  if (in_block(vector_bytes)) {
    fresh.floats = {static_cast<float*>(blocks_->take()), slab_memory{blocks_}};
  } else {
    fresh.floats = {new float[slots * floats], slab_memory{}};
    // The cache counts a slab whole from the start, and its slots fill as the cache grows.
    map_in_for_writing(fresh.floats.get(), vector_bytes);
  }
  fresh.slots = slots;
  fresh.free.reserve(slots);
  // Handed out from slot 0 up.
  for (auto slot = static_cast<std::uint32_t>(slots); slot-- > 1;)
    fresh.free.push_back(slot);
  auto* first = fresh.floats.get();
  bool room = !fresh.free.empty();
  c.slabs.emplace(first, std::move(fresh));
  if (room)
    c.with_room.insert(first);
  c.slots += slots;
  bytes_ += slab_bytes(slots, dims);
  return first;
}

const vector_slabs::slab* vector_slabs::home_of(const float* slot, std::size_t dims) const {
  auto c = by_dims_.find(dims);
  if (c == by_dims_.end())
    return nullptr;
  auto home = c->second.slabs.upper_bound(slot);
  if (home == c->second.slabs.begin())
    return nullptr;
  return &std::prev(home)->second;
}

std::pair<const float*, const float*> vector_slabs::slab_of(const float* slot,
                                                            std::size_t dims) const {
  auto* s = home_of(slot, dims);
  if (!s)
    return {slot, slot};
  return {s->floats.get(), s->floats.get() + s->slots * slot_floats(dims)};
}

void vector_slabs::give_back(float* slot, std::size_t dims) {
  auto* found = home_of(slot, dims);
  if (!found)
    return;
  auto& c = by_dims_[dims];
  auto& s = c.slabs.at(found->floats.get());
  auto floats = slot_floats(dims);
  s.free.push_back(static_cast<std::uint32_t>((slot - s.floats.get()) / floats));
  c.with_room.insert(s.floats.get());
  if (s.free.size() == s.slots) {
    bytes_ -= slab_bytes(s.slots, dims);
    c.slots -= s.slots;
    c.with_room.erase(s.floats.get());
    c.slabs.erase(s.floats.get());
    if (c.slabs.empty())
      by_dims_.erase(dims);
  }
}

void vector_slabs::clear() {
  by_dims_.clear();
  bytes_ = 0;
}

} // namespace emr

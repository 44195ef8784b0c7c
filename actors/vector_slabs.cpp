#include "actors/vector_slabs.hpp"

#include <algorithm>
#include <iterator>

namespace emr {

namespace {

// Blocks this large are mapped on their own by glibc (serve.cpp sets M_MMAP_THRESHOLD to it).
constexpr std::size_t mapped_block = 256 * 1024;
constexpr std::size_t page = 4096;

} // namespace

std::size_t allocated_bytes(std::size_t bytes) {
  return bytes >= mapped_block ? (bytes + 16 + page - 1) / page * page : (bytes + 8 + 15) / 16 * 16;
}

vector_slabs::vector_slabs(std::size_t most_bytes, std::size_t per_slot_bytes)
    : most_bytes_(most_bytes), per_slot_bytes_(per_slot_bytes) {}

std::size_t vector_slabs::slots_per_slab(std::size_t dims) const {
  auto slot = std::max<std::size_t>(1, dims) * sizeof(float);
  auto wanted = (mapped_block + slot - 1) / slot;
  auto slots = std::min(wanted, most_bytes_ / (slot + per_slot_bytes_));
  while (slots > 0 && allocated_bytes(slots * slot) + slots * per_slot_bytes_ > most_bytes_)
    --slots;
  return slots;
}

std::size_t vector_slabs::slab_bytes(std::size_t dims) const {
  auto slots = slots_per_slab(dims);
  return slots == 0 ? 0 : allocated_bytes(slots * std::max<std::size_t>(1, dims) * sizeof(float));
}

bool vector_slabs::has_room(std::size_t dims) const {
  auto c = by_dims_.find(dims);
  return c != by_dims_.end() && std::any_of(c->second.slabs.begin(), c->second.slabs.end(),
                                            [](const auto& s) { return !s.second.free.empty(); });
}

float* vector_slabs::take(std::size_t dims) {
  auto& c = by_dims_[dims];
  auto slot_floats = std::max<std::size_t>(1, dims);
  for (auto& [start, s] : c.slabs)
    if (!s.free.empty()) {
      auto slot = s.free.back();
      s.free.pop_back();
      return s.floats.get() + slot * slot_floats;
    }
  if (c.slots_per_slab == 0)
    c.slots_per_slab = slots_per_slab(dims);
  slab fresh;
  fresh.floats = std::make_unique_for_overwrite<float[]>(c.slots_per_slab * slot_floats);
  // Handed out from slot 0 up, so that pages never used are never touched.
  for (auto slot = static_cast<std::uint32_t>(c.slots_per_slab); slot-- > 1;)
    fresh.free.push_back(slot);
  auto* first = fresh.floats.get();
  c.slabs.emplace(first, std::move(fresh));
  bytes_ += slab_bytes(dims);
  return first;
}

void vector_slabs::give_back(float* slot, std::size_t dims) {
  auto c = by_dims_.find(dims);
  if (c == by_dims_.end())
    return;
  auto& slabs = c->second.slabs;
  auto home = slabs.upper_bound(slot);
  if (home == slabs.begin())
    return;
  --home;
  auto& s = home->second;
  auto slot_floats = std::max<std::size_t>(1, dims);
  s.free.push_back(static_cast<std::uint32_t>((slot - s.floats.get()) / slot_floats));
  if (s.free.size() == c->second.slots_per_slab) {
    slabs.erase(home);
    bytes_ -= slab_bytes(dims);
  }
}

void vector_slabs::clear() {
  by_dims_.clear();
  bytes_ = 0;
}

} // namespace emr

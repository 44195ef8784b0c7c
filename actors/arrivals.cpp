#include "actors/arrivals.hpp"

namespace emr {

namespace {
thread_local arrivals::entry* current_arrival = nullptr;
}

arrivals::entry::entry(arrivals& all) : all_(&all) {
  all_->count_.fetch_add(1, std::memory_order_relaxed);
  current_arrival = this;
}

arrivals::entry::~entry() {
  leave();
  current_arrival = nullptr;
}

void arrivals::entry::leave() {
  if (all_)
    all_->count_.fetch_sub(1, std::memory_order_relaxed);
  all_ = nullptr;
}

void arrivals::leave_current() {
  if (current_arrival)
    current_arrival->leave();
}

arrivals::in_transit arrivals::arrive() {
  count_.fetch_add(1, std::memory_order_relaxed);
  auto self = shared_from_this();
  return in_transit{self.get(),
                    [self](const void*) { self->count_.fetch_sub(1, std::memory_order_relaxed); }};
}

arrivals::in_transit arrivals::hand_over_current() {
  if (!current_arrival || !current_arrival->all_)
    return nullptr;
  auto all = current_arrival->all_->shared_from_this();
  current_arrival->all_ = nullptr;
  return in_transit{all.get(),
                    [all](const void*) { all->count_.fetch_sub(1, std::memory_order_relaxed); }};
}

} // namespace emr

#include "http/auth_limits.hpp"

#include <algorithm>
#include <thread>

namespace emr {

failure_budget::failure_budget(std::uint32_t per_minute, std::size_t capacity, clock now)
    : interval_(std::chrono::nanoseconds{std::chrono::minutes{1}} /
                std::max<std::uint32_t>(per_minute, 1)),
      burst_(interval_ * (std::max<std::uint32_t>(per_minute, 1) - 1)), capacity_(capacity),
      now_(std::move(now)) {}

void failure_budget::forget(std::unordered_map<std::string, subject_state>::iterator it) {
  charge_order_.erase(it->second.charge_position);
  subjects_.erase(it);
}

std::optional<std::chrono::milliseconds> failure_budget::take(std::string_view subject) {
  auto now = now_();
  std::lock_guard guard{mutex_};
  // Subjects charged longest ago are the likeliest to be whole again; dropping those keeps the
  // table at the subjects that matter without a sweep.
  while (!charge_order_.empty()) {
    auto oldest = subjects_.find(charge_order_.front());
    if (oldest->second.budget_full_at > now)
      break;
    forget(oldest);
  }
  auto it = subjects_.find(std::string{subject});
  auto full_at = it == subjects_.end() ? now : std::max(it->second.budget_full_at, now);
  if (full_at - now > burst_)
    return std::chrono::ceil<std::chrono::milliseconds>(full_at - burst_ - now);
  if (it == subjects_.end()) {
    if (capacity_ == 0)
      return std::nullopt;
    if (subjects_.size() >= capacity_)
      forget(subjects_.find(charge_order_.front()));
    it = subjects_.emplace(std::string{subject}, subject_state{}).first;
  } else {
    charge_order_.erase(it->second.charge_position);
  }
  it->second.budget_full_at = full_at + interval_;
  it->second.charge_position = charge_order_.insert(charge_order_.end(), it->first);
  return std::nullopt;
}

void failure_budget::give_back(std::string_view subject) {
  auto now = now_();
  std::lock_guard guard{mutex_};
  auto it = subjects_.find(std::string{subject});
  if (it == subjects_.end())
    return;
  it->second.budget_full_at -= interval_;
  if (it->second.budget_full_at <= now)
    forget(it);
}

std::size_t failure_budget::size() const {
  std::lock_guard guard{mutex_};
  return subjects_.size();
}

verification_slots::verification_slots(std::uint32_t limit)
    : limit_(std::max<std::uint32_t>(limit, 1)) {}

bool verification_slots::acquire(std::chrono::milliseconds wait) {
  std::unique_lock lock{mutex_};
  if (!freed_.wait_for(lock, wait, [this] { return in_use_ < limit_; }))
    return false;
  ++in_use_;
  return true;
}

void verification_slots::release() {
  {
    std::lock_guard guard{mutex_};
    --in_use_;
  }
  freed_.notify_one();
}

std::uint32_t concurrent_verifications(const auth_limits& limits) {
  if (limits.max_concurrent_verifications > 0)
    return limits.max_concurrent_verifications;
  return std::max(1u, std::thread::hardware_concurrency() / 2);
}

} // namespace emr

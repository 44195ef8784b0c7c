#pragma once
// Where a request actor leaves a caller's outcome for the HTTP thread that waits for it.
//
// std::promise would do, but its set_value runs through std::call_once, and glibc's
// pthread_once ends with a futex wake-up system call whether anyone waits or not; a mutex and a
// condition variable cost one more on the waiter's unlock (actors/futex.hpp). The request actor
// answers a whole batch's callers one after another on one CAF thread, so what each hand-off
// costs is paid a batch's worth of times on its way out. Here it is one wake-up, made only if
// the HTTP thread sleeps.

#include "actors/futex.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace emr {

template <class Outcome> class outcome_slot {
public:
  /// Leaves the outcome and wakes the waiting thread; only the first outcome counts.
  void set(Outcome outcome) {
    if (claimed_.exchange(true, std::memory_order_acq_rel))
      return;
    outcome_ = std::move(outcome);
    if (state_.exchange(ready, std::memory_order_acq_rel) == sleeping)
      futex::wake_one(state_);
  }

  /// The outcome, taken once it is left, or nullopt if none is within `wait`. One thread takes.
  std::optional<Outcome> take(std::chrono::nanoseconds wait) {
    auto deadline = std::chrono::steady_clock::now() + wait;
    // It says it sleeps before it does, so that an outcome left from now on wakes it.
    auto seen = empty;
    state_.compare_exchange_strong(seen, sleeping, std::memory_order_acq_rel);
    while (state_.load(std::memory_order_acquire) != ready) {
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds{0})
        return std::nullopt;
      futex::wait(state_, sleeping, left);
    }
    if (taken_)
      return std::nullopt;
    taken_ = true;
    return std::move(outcome_);
  }

private:
  static constexpr std::uint32_t empty = 0, sleeping = 1, ready = 2;
  std::atomic<bool> claimed_{false};
  std::atomic<std::uint32_t> state_{empty};
  std::optional<Outcome> outcome_;
  bool taken_ = false;
};

} // namespace emr

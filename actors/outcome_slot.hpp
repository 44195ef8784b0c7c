#pragma once
// Where a request actor leaves a caller's outcome for the HTTP thread that waits for it.
//
// std::promise would do, but its set_value runs through std::call_once, and glibc's
// pthread_once ends with a futex wake-up system call whether anyone waits or not; a mutex and a
// condition variable cost one more on the waiter's unlock (actors/futex.hpp). The request actor
// answers a whole batch's callers one after another on one CAF thread, so what each hand-off
// costs is paid a batch's worth of times on its way out. Here it is one wake-up, made only if
// the HTTP thread sleeps; or none, when the HTTP thread left a continuation (`then`) and went
// on to other requests.

#include "actors/futex.hpp"
#include "actors/waiting_scope.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>

namespace emr {

template <class Outcome> class outcome_slot {
public:
  /// Leaves the outcome and wakes the waiting thread, or runs the continuation here; only the
  /// first outcome counts.
  void set(Outcome outcome) {
    if (claimed_.exchange(true, std::memory_order_acq_rel))
      return;
    outcome_ = std::move(outcome);
    switch (state_.exchange(ready, std::memory_order_acq_rel)) {
    case sleeping:
      futex::wake_one(state_);
      break;
    case handed_on:
      taken_ = true;
      std::exchange(then_, {})(std::move(*outcome_));
      break;
    default:
      break;
    }
  }

  /// Has the thread that leaves the outcome run `then` with it (now, on this thread, if it is
  /// already left), instead of a thread taking it. Instead of take, once.
  void then(std::function<void(Outcome)> then) {
    then_ = std::move(then);
    auto seen = empty;
    if (state_.compare_exchange_strong(seen, handed_on, std::memory_order_acq_rel))
      return;
    taken_ = true;
    std::exchange(then_, {})(std::move(*outcome_));
  }

  /// The outcome, taken once it is left, or nullopt if none is within `wait`. One thread takes.
  std::optional<Outcome> take(std::chrono::nanoseconds wait) {
    auto deadline = std::chrono::steady_clock::now() + wait;
    // It says it sleeps before it does, so that an outcome left from now on wakes it.
    auto seen = empty;
    state_.compare_exchange_strong(seen, sleeping, std::memory_order_acq_rel);
    std::optional<waiting_scope> waiting;
    if (state_.load(std::memory_order_acquire) != ready)
      waiting.emplace();
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
  static constexpr std::uint32_t empty = 0, sleeping = 1, ready = 2, handed_on = 3;
  std::atomic<bool> claimed_{false};
  std::atomic<std::uint32_t> state_{empty};
  std::optional<Outcome> outcome_;
  std::function<void(Outcome)> then_;
  bool taken_ = false;
};

} // namespace emr

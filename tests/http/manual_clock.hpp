#pragma once
// A steady clock that tests move by hand, for the decisions that take an injected clock.

#include <chrono>
#include <functional>
#include <memory>

namespace emr::testing {

struct manual_clock {
  std::shared_ptr<std::chrono::steady_clock::time_point> now =
      std::make_shared<std::chrono::steady_clock::time_point>();
  /// Reads this clock; copies stay tied to it.
  std::function<std::chrono::steady_clock::time_point()> function() const {
    return [now = now] { return *now; };
  }
  void advance(std::chrono::steady_clock::duration d) { *now += d; }
};

} // namespace emr::testing

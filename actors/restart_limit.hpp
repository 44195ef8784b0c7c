#pragma once
// How often an actor that keeps dying is restarted: at most max_restarts within a sliding window
// (OTP's restart intensity), after which it stays down and is reported failed instead of looping.
// The limit is pure logic on an injected clock.

#include "actors/messages.hpp"

#include <caf/error.hpp>

#include <chrono>
#include <deque>

namespace emr {

struct restart_settings {
  int max_restarts = 5; ///< restarts allowed within the window; 0 never restarts
  std::chrono::seconds window{60};
};

/// A crash worth a restart (an exception, a kill), as opposed to a drain or a shutdown.
bool stopped_abnormally(const caf::error& exit_reason);

class restart_limit {
public:
  explicit restart_limit(restart_settings settings) : settings_(settings) {}

  /// Whether another restart is allowed at `now`; if so, it is counted.
  bool allow(clock_time now);

private:
  restart_settings settings_;
  std::deque<clock_time> recent_; ///< restarts within the window, oldest first
};

} // namespace emr

// Sleeps that end early on shutdown, so SIGTERM never waits for an injected 10 s timeout.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace emr::fake {

class stop_signal {
public:
  void sleep_ms(long ms) {
    if (ms <= 0)
      return;
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
  }
  void trigger() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

} // namespace emr::fake

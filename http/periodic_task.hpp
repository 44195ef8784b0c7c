#pragma once
// A task run every few seconds on a thread of its own, such as writing counts kept in memory to
// the store, so that no request waits for it.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace emr {

class periodic_task {
public:
  periodic_task(std::chrono::milliseconds period, std::function<void()> task)
      : thread_([this, period, task = std::move(task)](std::stop_token stop) {
          std::mutex m;
          std::unique_lock lock{m};
          while (!stop.stop_requested()) {
            wakeup_.wait_for(lock, stop, period, [] { return false; });
            task();
          }
        }) {}
  /// Stops the thread; a run under way finishes first. The owner does what is left itself.
  ~periodic_task() {
    thread_.request_stop();
    if (thread_.joinable())
      thread_.join();
  }
  periodic_task(const periodic_task&) = delete;
  periodic_task& operator=(const periodic_task&) = delete;

private:
  std::condition_variable_any wakeup_;
  std::jthread thread_;
};

} // namespace emr

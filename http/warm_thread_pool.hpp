#pragma once
// The HTTP worker threads: each request ready to be served goes to the thread that went idle last.
//
// A thread keeps the stack pages and allocator caches it has touched. httplib's own pool wakes
// its idle threads in turn, so over time every one of `server.threads` (1024) becomes resident;
// taking the most recently idle thread keeps only as many warm as the peak of concurrent
// requests.

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace emr {

class warm_thread_pool : public httplib::TaskQueue {
public:
  /// `thread_start` runs on each thread before its first job, one thread at a time.
  explicit warm_thread_pool(std::size_t threads, std::function<void()> thread_start = {});
  ~warm_thread_pool() override;
  warm_thread_pool(const warm_thread_pool&) = delete;
  warm_thread_pool& operator=(const warm_thread_pool&) = delete;

  /// Runs `job` on the most recently idle thread, or queues it while every thread is busy.
  void enqueue(std::function<void()> job) override;
  /// Runs what is queued, then stops and joins every thread.
  void shutdown() override;
  /// Threads waiting for a job now.
  std::size_t idle_threads();

private:
  /// One thread's handoff: the job it was given while idle, and the word it sleeps on
  /// (actors/futex.hpp), set once the job is there or the pool stops.
  struct worker {
    std::function<void()> job;
    std::atomic<std::uint32_t> woken{0};
  };

  void run(worker& self);
  /// Wakes `w`, taken off the idle list, to run its job or stop.
  static void wake(worker& w);

  std::function<void()> thread_start_;
  std::mutex mutex_;
  std::vector<worker*> idle_; ///< the most recently idle last
  std::deque<std::function<void()>> queued_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<worker>> workers_;
  std::vector<std::thread> threads_;
};

} // namespace emr

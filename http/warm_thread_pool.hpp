#pragma once
// The HTTP worker threads: each request ready to be served goes to the thread that went idle last.
//
// A thread keeps the stack pages and allocator caches it has touched. httplib's own pool wakes
// its idle threads in turn, so over time every one of `server.threads` (1024) becomes resident;
// taking the most recently idle thread keeps only as many warm as the peak of concurrent
// requests.

#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace emr {

class warm_thread_pool : public httplib::TaskQueue {
public:
  explicit warm_thread_pool(std::size_t threads);
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
  /// One thread's handoff: the job it was given while idle, and what wakes it.
  struct worker {
    std::function<void()> job;
    std::condition_variable wake;
  };

  void run(worker& self);

  std::mutex mutex_;
  std::vector<worker*> idle_; ///< the most recently idle last
  std::deque<std::function<void()>> queued_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<worker>> workers_;
  std::vector<std::thread> threads_;
};

} // namespace emr

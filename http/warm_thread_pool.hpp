#pragma once
// The HTTP worker threads: each request ready to be served goes to the thread that went idle last,
// and only a few of them run at once.
//
// A thread keeps the stack pages and allocator caches it has touched. httplib's own pool wakes
// its idle threads in turn, so over time every one of `server.threads` (1024) becomes resident;
// taking the most recently idle thread keeps only as many warm as the peak of concurrent
// requests.
//
// Waking a sleeping thread costs the waker a system call and the machine a context switch, and on
// the 2-core VMs emr is measured on both are dear. A burst of a hundred callers used to wake a
// hundred threads, which then fought the gate and each other for two cores: reading the burst in
// took 7-12 ms. Now a job goes to an idle thread only while fewer than `at_once` run; the rest
// queue, and each running thread takes the next as it finishes, with no wake-up in between. A
// thread that waits (a slow client's body, a batch call's outcome, the store, argon2) says so
// with a waiting_scope and lends its place meanwhile. For a wait nobody marked, a sentry thread
// watches the queue: when no queued job has been taken for `stall`, it runs one itself.

#include "actors/waiting_scope.hpp"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace emr {

class warm_thread_pool : public httplib::TaskQueue, private waiting_scope::pool {
public:
  using clock = std::chrono::steady_clock;

  /// `threads` in all, of which `at_once` run jobs at the same time, not counting those in a
  /// waiting_scope. `thread_start` runs on each thread before its first job, one thread at a
  /// time.
  warm_thread_pool(std::size_t threads, std::size_t at_once,
                   std::function<void()> thread_start = {},
                   clock::duration stall = std::chrono::milliseconds{1});
  ~warm_thread_pool() override;
  warm_thread_pool(const warm_thread_pool&) = delete;
  warm_thread_pool& operator=(const warm_thread_pool&) = delete;

  /// Runs `job` on the most recently idle thread while fewer than `at_once` run, or queues it.
  void enqueue(std::function<void()> job) override;
  /// Runs what is queued, then stops and joins every thread.
  void shutdown() override;
  /// Threads waiting for a job now.
  std::size_t idle_threads();
  /// Jobs waiting for a thread now.
  std::size_t queued_jobs();

private:
  /// One thread's handoff: the job it was given while idle, or the sentry's duty, and the word
  /// it sleeps on (actors/futex.hpp), set once either is there or the pool stops.
  struct worker {
    std::function<void()> job;
    bool sentry = false;
    std::atomic<std::uint32_t> woken{0};
  };

  void run(worker& self);
  /// The sentry's watch over a queue that may have stalled; returns the job it took, or none
  /// once the queue is empty or the pool stops. Called and returns with `lock` held.
  std::function<void()> keep_watch(worker& self, std::unique_lock<std::mutex>& lock);
  /// Takes the queue's first job for a running thread. Under the mutex.
  std::function<void()> take_queued();
  /// Hands the queue's first job to the most recently idle thread, which runs it; false if
  /// there is no idle thread. Under the mutex; the thread is woken after it is released.
  worker* hand_on_queued();
  /// Makes an idle thread the sentry while jobs are queued and none watches. Under the mutex.
  worker* post_sentry();
  /// Wakes `w`, taken off the idle list, to run its job, keep watch or stop.
  static void wake(worker* w);

  void thread_waits() override;
  void thread_resumes() override;

  std::size_t at_once_;
  clock::duration stall_;
  std::function<void()> thread_start_;
  std::mutex mutex_;
  std::vector<worker*> idle_; ///< the most recently idle last
  std::deque<std::function<void()>> queued_;
  /// When a queued job was last taken, or the queue last became non-empty.
  clock::time_point queue_moved_;
  std::size_t running_ = 0; ///< threads with a job, not in a waiting_scope
  worker* sentry_ = nullptr;
  bool stopping_ = false;
  std::vector<std::unique_ptr<worker>> workers_;
  std::vector<std::thread> threads_;
};

} // namespace emr

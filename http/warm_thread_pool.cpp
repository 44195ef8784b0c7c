#include "http/warm_thread_pool.hpp"

#include <sched.h>

namespace emr {

warm_thread_pool::warm_thread_pool(std::size_t threads) {
  workers_.reserve(threads);
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    workers_.push_back(std::make_unique<worker>());
    threads_.emplace_back([this, w = workers_.back().get()] { run(*w); });
  }
}

warm_thread_pool::~warm_thread_pool() {
  shutdown();
}

void warm_thread_pool::enqueue(std::function<void()> job) {
  std::unique_lock lock(mutex_);
  if (idle_.empty()) {
    queued_.push_back(std::move(job));
    return;
  }
  worker* w = idle_.back();
  idle_.pop_back();
  w->job = std::move(job);
  lock.unlock();
  w->wake.notify_one();
}

void warm_thread_pool::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_)
      return;
    stopping_ = true;
  }
  for (auto& w : workers_)
    w->wake.notify_one();
  for (auto& t : threads_)
    t.join();
}

std::size_t warm_thread_pool::idle_threads() {
  std::lock_guard lock(mutex_);
  return idle_.size();
}

void warm_thread_pool::run(worker& self) {
  // A burst wakes hundreds of these at once. As batch threads they never preempt the ones that
  // keep requests moving (the accept loop, the connection gate, the actors): a gate starved by
  // a thousand parsers stops handing requests on, and the batchers see the burst stall and send
  // it in pieces.
  sched_param none{};
  sched_setscheduler(0, SCHED_BATCH, &none);
  std::unique_lock lock(mutex_);
  for (;;) {
    std::function<void()> job;
    if (self.job) {
      job = std::move(self.job);
      self.job = nullptr;
    } else if (!queued_.empty()) {
      job = std::move(queued_.front());
      queued_.pop_front();
    } else if (stopping_) {
      return;
    } else {
      idle_.push_back(&self);
      self.wake.wait(lock, [&] { return self.job || stopping_; });
      continue;
    }
    lock.unlock();
    job();
    lock.lock();
  }
}

} // namespace emr

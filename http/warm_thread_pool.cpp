#include "http/warm_thread_pool.hpp"

#include "actors/futex.hpp"

#include <sched.h>

namespace emr {

warm_thread_pool::warm_thread_pool(std::size_t threads, std::function<void()> thread_start)
    : thread_start_(std::move(thread_start)) {
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
  wake(*w);
}

void warm_thread_pool::wake(worker& w) {
  w.woken.store(1, std::memory_order_release);
  futex::wake_one(w.woken);
}

void warm_thread_pool::shutdown() {
  std::vector<worker*> idle;
  {
    std::lock_guard lock(mutex_);
    if (stopping_)
      return;
    stopping_ = true;
    idle.swap(idle_);
  }
  for (auto* w : idle)
    wake(*w);
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
  if (thread_start_) {
    std::lock_guard lock(mutex_);
    thread_start_();
  }
  for (;;) {
    std::function<void()> job;
    {
      std::lock_guard lock(mutex_);
      if (!queued_.empty()) {
        job = std::move(queued_.front());
        queued_.pop_front();
      } else if (stopping_) {
        return;
      } else {
        self.woken.store(0, std::memory_order_relaxed);
        idle_.push_back(&self);
      }
    }
    if (!job) {
      // Off the list again only through enqueue (with a job) or shutdown (without one).
      while (self.woken.load(std::memory_order_acquire) == 0)
        futex::wait(self.woken, 0);
      job = std::move(self.job);
      self.job = nullptr;
      if (!job)
        continue; // stopping: run what is queued, then return
    }
    job();
  }
}

} // namespace emr

#include "http/warm_thread_pool.hpp"

#include "actors/futex.hpp"

#include <sched.h>

#include <utility>

namespace emr {

warm_thread_pool::warm_thread_pool(std::size_t threads, std::size_t at_once,
                                   std::function<void()> thread_start, clock::duration stall)
    : at_once_(std::max<std::size_t>(at_once, 1)), stall_(stall),
      thread_start_(std::move(thread_start)), running_(threads) {
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
  worker* w = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (queued_.empty())
      queue_moved_ = clock::now();
    queued_.push_back(std::move(job));
    if (running_ < at_once_)
      w = hand_on_queued();
    if (!w)
      w = post_sentry();
  }
  wake(w);
}

std::function<void()> warm_thread_pool::take_queued() {
  auto job = std::move(queued_.front());
  queued_.pop_front();
  queue_moved_ = clock::now();
  return job;
}

warm_thread_pool::worker* warm_thread_pool::hand_on_queued() {
  if (idle_.empty() || queued_.empty())
    return nullptr;
  worker* w = idle_.back();
  idle_.pop_back();
  w->job = take_queued();
  ++running_;
  return w;
}

warm_thread_pool::worker* warm_thread_pool::post_sentry() {
  if (sentry_ || stopping_ || queued_.empty() || idle_.empty())
    return nullptr;
  sentry_ = idle_.back();
  idle_.pop_back();
  sentry_->sentry = true;
  return sentry_;
}

void warm_thread_pool::wake(worker* w) {
  if (!w)
    return;
  w->woken.store(1, std::memory_order_release);
  futex::wake_one(w->woken);
}

void warm_thread_pool::thread_waits() {
  worker* w = nullptr;
  {
    std::lock_guard lock(mutex_);
    --running_;
    if (running_ < at_once_)
      w = hand_on_queued();
  }
  wake(w);
}

void warm_thread_pool::thread_resumes() {
  std::lock_guard lock(mutex_);
  ++running_;
}

void warm_thread_pool::shutdown() {
  std::vector<worker*> idle;
  {
    std::lock_guard lock(mutex_);
    if (stopping_)
      return;
    stopping_ = true;
    idle.swap(idle_);
    if (sentry_)
      idle.push_back(sentry_);
  }
  for (auto* w : idle)
    wake(w);
  for (auto& t : threads_)
    t.join();
}

std::size_t warm_thread_pool::idle_threads() {
  std::lock_guard lock(mutex_);
  return idle_.size();
}

std::size_t warm_thread_pool::queued_jobs() {
  std::lock_guard lock(mutex_);
  return queued_.size();
}

std::function<void()> warm_thread_pool::keep_watch(worker& self,
                                                   std::unique_lock<std::mutex>& lock) {
  for (;;) {
    if (queued_.empty() || stopping_) {
      sentry_ = nullptr;
      self.sentry = false;
      return {};
    }
    auto left = queue_moved_ + stall_ - clock::now();
    if (left <= clock::duration::zero()) {
      // Every running thread is held by a wait nobody marked: this one runs a job more, and
      // another idle thread keeps watch over what is still queued.
      sentry_ = nullptr;
      self.sentry = false;
      ++running_;
      auto job = take_queued();
      wake(post_sentry());
      return job;
    }
    self.woken.store(0, std::memory_order_relaxed);
    lock.unlock();
    futex::wait(self.woken, 0, left);
    lock.lock();
  }
}

void warm_thread_pool::run(worker& self) {
  // A burst wakes hundreds of these at once. As batch threads they never preempt the ones that
  // keep requests moving (the accept loop, the connection gate, the actors): a gate starved by
  // a thousand parsers stops handing requests on, and the batchers see the burst stall and send
  // it in pieces.
  sched_param none{};
  sched_setscheduler(0, SCHED_BATCH, &none);
  waiting_scope::belong_to(this);
  std::unique_lock lock(mutex_);
  if (thread_start_)
    thread_start_();
  // Each turn starts with this thread counted in running_ and the mutex held.
  for (;;) {
    std::function<void()> job;
    if (!queued_.empty() && (running_ <= at_once_ || stopping_)) {
      job = take_queued();
    } else {
      --running_;
      if (stopping_)
        return;
      if (queued_.empty() || sentry_) {
        self.woken.store(0, std::memory_order_relaxed);
        idle_.push_back(&self);
        lock.unlock();
        // Off the list again only through a job handed on, the sentry's duty or shutdown.
        while (self.woken.load(std::memory_order_acquire) == 0)
          futex::wait(self.woken, 0);
        lock.lock();
      } else {
        // Jobs wait while others run, and none keeps watch: this thread does.
        sentry_ = &self;
        self.sentry = true;
      }
      if (self.sentry)
        job = keep_watch(self, lock);
      else
        job = std::exchange(self.job, nullptr);
      if (!job) {
        ++running_; // woken to stop, or the queue it watched is empty: the next turn decides
        continue;
      }
    }
    lock.unlock();
    job();
    lock.lock();
  }
}

} // namespace emr

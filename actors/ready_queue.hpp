#pragma once
// How CAF's worker threads share the actors that are ready to run: one queue, as CAF's
// work-sharing policy has it, without its costs on every message to an idle actor.
//
// CAF's policy allocates a list node for each ready actor and signals a condition variable while
// still holding the queue's lock, so the worker it wakes first blocks on that lock: on two cores,
// with a hundred HTTP threads spawning request actors into the same queue, each hand-off cost a
// futex round trip or two. Here the queue is a deque, and a sleeping worker is woken on its own
// word (actors/futex.hpp) after the lock is released, and only when no awake worker will take
// the actor. (Work stealing would need no lock, but its idle workers poll and then sleep in
// 10 ms steps, which a lone caller would wait out.)

#include "actors/futex.hpp"

#include <caf/policy/unprofiled.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace emr {

class ready_queue : public caf::policy::unprofiled {
public:
  struct coordinator_data {
    explicit coordinator_data(caf::scheduler::abstract_coordinator*) {}
    std::mutex lock;
    std::deque<caf::resumable*> ready;
    std::vector<std::atomic<std::uint32_t>*> sleeping; ///< each sleeping worker's word
  };
  struct worker_data {
    explicit worker_data(caf::scheduler::abstract_coordinator*) {}
    // CAF copies one initial value into every worker.
    worker_data(const worker_data&) {}
    std::atomic<std::uint32_t> woken{0}; ///< set, and woken, when taken off the sleeping list
  };

  template <class Coordinator> void central_enqueue(Coordinator* self, caf::resumable* job) {
    push(d(self), job);
  }
  template <class Worker> void external_enqueue(Worker* self, caf::resumable* job) {
    push(d(self->parent()), job);
  }
  /// An actor made ready by one running on a worker: that worker takes it when it next looks,
  /// unless others already wait for it. A request's actors then run one after the other on one
  /// thread, instead of each waking another. CAF also calls this from other threads, with the
  /// worker an actor last ran on (an actor torn down elsewhere tells its monitors through it):
  /// that worker may sleep, so those go as from outside.
  template <class Worker> void internal_enqueue(Worker* self, caf::resumable* job) {
    bool on_worker = self->get_thread().get_id() == std::this_thread::get_id();
    push(d(self->parent()), job, on_worker ? 1 : 0);
  }
  /// An actor that gave up its thread to let others run goes to the back of the queue.
  template <class Worker> void resume_job_later(Worker* self, caf::resumable* job) {
    push(d(self->parent()), job);
  }

  template <class Worker> caf::resumable* dequeue(Worker* self) {
    auto& q = d(self->parent());
    auto& woken = d(self).woken;
    for (;;) {
      {
        std::lock_guard guard(q.lock);
        if (!q.ready.empty()) {
          auto* job = q.ready.front();
          q.ready.pop_front();
          return job;
        }
        woken.store(0, std::memory_order_relaxed);
        q.sleeping.push_back(&woken);
      }
      while (woken.load(std::memory_order_acquire) == 0)
        futex::wait(woken, 0);
    }
  }

  template <class Worker, class F> void foreach_resumable(Worker*, F) {}

  /// At shutdown: hands every actor still queued to `f`.
  template <class Coordinator, class F> void foreach_central_resumable(Coordinator* self, F f) {
    auto& q = d(self);
    std::lock_guard guard(q.lock);
    while (!q.ready.empty()) {
      auto* job = q.ready.front();
      q.ready.pop_front();
      f(job);
    }
  }

private:
  /// Queues `job`, and wakes the worker that slept last if more than `taken_anyway` actors wait
  /// (those a worker that is awake takes when it next looks).
  static void push(coordinator_data& q, caf::resumable* job, std::size_t taken_anyway = 0) {
    std::atomic<std::uint32_t>* wake = nullptr;
    {
      std::lock_guard guard(q.lock);
      q.ready.push_back(job);
      if (q.ready.size() > taken_anyway && !q.sleeping.empty()) {
        wake = q.sleeping.back();
        q.sleeping.pop_back();
      }
    }
    if (wake) {
      wake->store(1, std::memory_order_release);
      futex::wake_one(*wake);
    }
  }
};

} // namespace emr

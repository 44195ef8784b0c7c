#pragma once
// CAF's clock (request timeouts, `delayed_send`) without waking its thread for every timer set or
// cancelled.
//
// CAF 0.17's clock hands every change to its thread through a queue that wakes the thread when it
// was empty. A request actor sets a timeout on its message to the batcher and cancels it when it
// quits: two wake-ups of the clock's thread per caller, each a context switch on a machine whose
// two cores are busy answering. Here a change is made under a mutex by the thread that makes it,
// and the clock's thread is woken only when a new timer is due before the one it sleeps for; a
// cancelled timer it sleeps for only wakes it to sleep longer. The schedule itself, and how an
// expired timer is delivered, are CAF's (simple_actor_clock), as its test clock uses them.

#include <caf/detail/thread_safe_actor_clock.hpp>

#include <condition_variable>
#include <mutex>

namespace emr {

// Derived from CAF's thread-safe clock only because the coordinator's clock() must return one;
// none of its own machinery runs.
class timer_clock : public caf::detail::thread_safe_actor_clock {
public:
  using simple = caf::detail::simple_actor_clock;

  void set_ordinary_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                            std::uint64_t id) override {
    std::unique_lock lock{mutex_};
    simple::set_ordinary_timeout(t, self, type, id);
    wake_if_sooner(t);
  }
  void set_request_timeout(time_point t, caf::abstract_actor* self, caf::message_id id) override {
    std::unique_lock lock{mutex_};
    simple::set_request_timeout(t, self, id);
    wake_if_sooner(t);
  }
  void set_multi_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                         std::uint64_t id) override {
    std::unique_lock lock{mutex_};
    simple::set_multi_timeout(t, self, type, id);
    wake_if_sooner(t);
  }
  void schedule_message(time_point t, caf::strong_actor_ptr receiver,
                        caf::mailbox_element_ptr content) override {
    std::unique_lock lock{mutex_};
    simple::schedule_message(t, std::move(receiver), std::move(content));
    wake_if_sooner(t);
  }
  void schedule_message(time_point t, caf::group target, caf::strong_actor_ptr sender,
                        caf::message content) override {
    std::unique_lock lock{mutex_};
    simple::schedule_message(t, std::move(target), std::move(sender), std::move(content));
    wake_if_sooner(t);
  }
  void cancel_ordinary_timeout(caf::abstract_actor* self, caf::atom_value type) override {
    std::unique_lock lock{mutex_};
    simple::cancel_ordinary_timeout(self, type);
  }
  void cancel_request_timeout(caf::abstract_actor* self, caf::message_id id) override {
    std::unique_lock lock{mutex_};
    simple::cancel_request_timeout(self, id);
  }
  void cancel_timeouts(caf::abstract_actor* self) override {
    std::unique_lock lock{mutex_};
    simple::cancel_timeouts(self);
  }
  void cancel_all() override { drop_all(false); }

  /// Delivers each timer as it falls due, until stop().
  void run() {
    std::unique_lock lock{mutex_};
    while (!stopping_) {
      if (schedule_.empty()) {
        sleeping_until_ = time_point::max();
        woken_.wait(lock);
      } else if (auto due = schedule_.begin()->first; now() < due) {
        sleeping_until_ = due;
        woken_.wait_until(lock, due);
      } else {
        auto expired = std::move(schedule_.begin()->second);
        schedule_.erase(schedule_.begin());
        if (expired->backlink != actor_lookup_.end())
          actor_lookup_.erase(expired->backlink);
        // Delivered unlocked: the message, or the last reference to an actor it drops, may
        // come back to the clock.
        sleeping_until_ = time_point::min();
        lock.unlock();
        ship(*expired);
        expired.reset();
        lock.lock();
        continue;
      }
      // Awake: whatever is set meanwhile is seen before the next sleep.
      sleeping_until_ = time_point::min();
    }
  }

  /// Ends run() and drops every timer still set. A delayed message holds its receiver, and the
  /// actor system waits at shutdown for every detached actor's last reference to go.
  void stop() { drop_all(true); }

private:
  void drop_all(bool stopping) {
    schedule_map dropped;
    {
      std::unique_lock lock{mutex_};
      stopping_ = stopping_ || stopping;
      actor_lookup_.clear();
      dropped.swap(schedule_);
      woken_.notify_one();
    }
    // Destroyed unlocked: an actor whose last reference goes may come back to the clock.
  }

  void wake_if_sooner(time_point t) {
    if (t < sleeping_until_)
      woken_.notify_one();
  }

  std::mutex mutex_;
  std::condition_variable woken_;
  time_point sleeping_until_ = time_point::min(); ///< min while the thread is awake
  bool stopping_ = false;
};

} // namespace emr

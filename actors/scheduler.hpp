#pragma once
// emr's CAF scheduler: CAF's coordinator with worker threads on emr's policy (ready_queue.hpp)
// and timers on emr's clock (timer_clock.hpp), loaded with
// `actor_system_config::load<emr::scheduler>()`.

#include "actors/ready_queue.hpp"
#include "actors/timer_clock.hpp"

#include <caf/scheduler/coordinator.hpp>

#include <pthread.h>

#include <thread>

namespace emr {

class scheduler : public caf::scheduler::coordinator<ready_queue> {
public:
  using super = caf::scheduler::coordinator<ready_queue>;
  using super::super;

  static caf::actor_system::module* make(caf::actor_system& sys, caf::detail::type_list<>) {
    return new scheduler(sys);
  }

  timer_clock& clock() noexcept override { return timers_; }

protected:
  void start() override {
    ticker_ = std::thread{[this] {
      pthread_setname_np(pthread_self(), "emr.clock");
      system().thread_started();
      timers_.run();
      system().thread_terminates();
    }};
    super::start();
  }

  void stop() override {
    // The workers and CAF's own (idle) clock stop first: until then actors may still set timers.
    super::stop();
    timers_.stop();
    ticker_.join();
  }

private:
  timer_clock timers_;
  std::thread ticker_;
};

} // namespace emr

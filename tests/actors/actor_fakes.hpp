#pragma once
// Stand-ins for emr's actors, for tests on CAF's deterministic test scheduler: each records what
// it was sent and answers only when the test says so.

#include "actors/actors.hpp"

#include <deque>

#include <caf/all.hpp>

#include <memory>
#include <vector>

namespace emr::testing {

/// An actor system on CAF's deterministic test scheduler, for fixtures to derive from.
struct test_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;

  void start_test_system() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
  }
};

/// Health: records attachments and reports; answers `status` with fixed stats.
struct mock_health_state {
  std::vector<std::string> attached;
  std::vector<call_report> reports;
  static inline const char* name = "mock_health";
};

inline health_actor::behavior_type
mock_health(health_actor::stateful_pointer<mock_health_state> self, health_stats answer) {
  return {
      [self](atom::report, const call_report& r) { self->state.reports.push_back(r); },
      [self](atom::attach, const std::string& provider, batcher_actor) {
        self->state.attached.push_back(provider);
      },
      [](atom::detach, const std::string&) {},
      [](atom::tick) {},
      [answer](atom::status) { return answer; },
  };
}

/// The fleet's budget: answers each ask with the next scripted grant (none left: out of reach, in
/// a fleet last counted at three), and records the asks and the pauses it is told of.
struct fleet_stand_in_state {
  std::deque<budget_grant> answers;
  std::vector<budget_ask> asks;
  std::vector<std::pair<std::string, double>> pauses;
  static inline const char* name = "fleet_stand_in";
};

inline fleet_budget_actor::behavior_type
fleet_stand_in(fleet_budget_actor::stateful_pointer<fleet_stand_in_state> self, int) {
  return {
      [self](atom::grant, const budget_ask& ask) {
        auto& st = self->state;
        st.asks.push_back(ask);
        budget_grant g;
        g.reachable = false;
        g.replicas = 3;
        if (!st.answers.empty()) {
          g = st.answers.front();
          st.answers.pop_front();
        }
        return g;
      },
      [self](atom::pause, const std::string& provider, double seconds) {
        self->state.pauses.emplace_back(provider, seconds);
      },
      [](atom::pause) {},
      [](atom::tick) {},
  };
}

/// Tells a fake to answer what it holds. A response promise is delivered from inside its actor
/// (CAF's test scheduler has no context for one delivered from the test body), so the fakes are
/// untyped actors that take this besides their interface, and tests hold them by typed handles.
using release_atom = caf::atom_constant<caf::atom("release")>;
using crash_atom = caf::atom_constant<caf::atom("crash")>;

/// An upstream worker that holds every call until `release`: a provider that hangs. Like a real
/// worker, it answers `ready` only once every call before it is answered.
struct fake_worker_state {
  std::vector<upstream_call> calls; ///< every call it was sent: the POSTs a provider would see
  std::vector<caf::response_promise> held_calls;
  std::vector<caf::response_promise> held_ready;
  static inline const char* name = "fake_worker";
};

// The fakes take an unused argument: for a function actor spawned without any, CAF 0.17's
// factory binds a reference to a null tuple, which UBSan rightly reports.
inline caf::behavior fake_worker(caf::stateful_actor<fake_worker_state>* self, int) {
  return {
      [self](atom::call, const upstream_call& call) {
        self->state.calls.push_back(call);
        self->state.held_calls.push_back(self->make_response_promise());
      },
      [self](atom::ready) {
        auto promise = self->make_response_promise();
        if (self->state.held_calls.empty())
          promise.deliver(caf::unit);
        else
          self->state.held_ready.push_back(promise);
      },
      // Answers every held call with the reply, then every `ready` that waited for them.
      [self](release_atom, const upstream_reply& reply) {
        for (auto& call : self->state.held_calls)
          call.deliver(reply);
        self->state.held_calls.clear();
        for (auto& ready : self->state.held_ready)
          ready.deliver(caf::unit);
        self->state.held_ready.clear();
      },
      // Dies as a real worker would inside its call (an exception): what waits in its mailbox,
      // the batcher's `ready` among it, is bounced.
      [self](crash_atom) {
        auto bounced = caf::make_error(caf::sec::request_receiver_down);
        for (auto& call : self->state.held_calls)
          call.deliver(bounced);
        for (auto& ready : self->state.held_ready)
          ready.deliver(bounced);
        self->state.held_calls.clear();
        self->state.held_ready.clear();
        self->quit(caf::exit_reason::unhandled_exception);
      },
  };
}

using fake_worker_impl = caf::stateful_actor<fake_worker_state>;

/// A batcher that holds every message until `release` answers it, and records settled batches.
struct fake_batcher_state {
  struct held_message {
    chunk_requests message;
    caf::response_promise promise;
  };
  std::vector<held_message> messages;
  std::vector<batch_outcome> outcomes;
  static inline const char* name = "fake_batcher";
};

inline caf::behavior fake_batcher(caf::stateful_actor<fake_batcher_state>* self, int) {
  return {
      [self](atom::embed, chunk_requests& message) {
        self->state.messages.push_back({std::move(message), self->make_response_promise()});
      },
      [self](atom::done, batch_outcome& outcome) {
        self->state.outcomes.push_back(std::move(outcome));
      },
      // Answers the held message with this index.
      [self](release_atom, std::size_t index, chunk_results& answers) {
        self->state.messages.at(index).promise.deliver(std::move(answers));
      },
  };
}

using fake_batcher_impl = caf::stateful_actor<fake_batcher_state>;

/// The state of an actor spawned on this process's actor system.
template <class Impl, class Handle> auto& state_of(const Handle& handle) {
  return dynamic_cast<Impl&>(*caf::actor_cast<caf::abstract_actor*>(handle)).state;
}

} // namespace emr::testing

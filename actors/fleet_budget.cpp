#include "actors/fleet_budget.hpp"

#include <spdlog/spdlog.h>

namespace emr {

void fleet_budget_state::reached(bool answered, const char* why) {
  if (answered == reachable)
    return;
  reachable = answered;
  if (answered)
    spdlog::info("the fleet's budget ledger answers again; providers' limits are shared again");
  else
    spdlog::warn("the fleet's budget ledger is out of reach ({}); each provider's limit is spent "
                 "as a 1/{} share until it is back",
                 why, replicas);
}

fleet_budget_actor::behavior_type
fleet_budget(fleet_budget_actor::stateful_pointer<fleet_budget_state> self,
             std::unique_ptr<budget_ledger> ledger, std::chrono::milliseconds heartbeat) {
  self->state.ledger = std::move(ledger);
  self->state.heartbeat = heartbeat;
  self->send(self, atom::tick::value);
  return {
      [self](atom::grant, const budget_ask& ask) {
        auto& st = self->state;
        if (auto sender = self->current_sender())
          st.batchers[ask.provider] = sender->address();
        budget_grant g;
        try {
          g = st.ledger->grant(ask);
          st.reached(true, "");
        } catch (const std::exception& e) {
          g.reachable = false;
          st.reached(false, e.what());
        }
        g.replicas = st.replicas;
        return g;
      },
      [self](atom::pause, const std::string& provider, double seconds) {
        try {
          self->state.ledger->pause(provider, seconds);
        } catch (const std::exception& e) {
          // The other replicas learn of the limit from their own 429s, as a lone replica would.
          self->state.reached(false, e.what());
        }
      },
      [self](atom::pause) {
        auto& st = self->state;
        try {
          for (const auto& [provider, seconds] : st.ledger->pauses()) {
            auto found = st.batchers.find(provider);
            if (found == st.batchers.end())
              continue;
            if (auto batcher = caf::actor_cast<batcher_actor>(found->second))
              self->send(batcher, atom::pause::value, seconds);
          }
        } catch (const std::exception& e) {
          // Each batcher still learns of the pause at its next grant.
          st.reached(false, e.what());
        }
      },
      [self](atom::tick) {
        auto& st = self->state;
        try {
          st.replicas = st.ledger->heartbeat();
          st.reached(true, "");
        } catch (const std::exception& e) {
          st.reached(false, e.what());
        }
        self->delayed_send(self, st.heartbeat, atom::tick::value);
      },
  };
}

} // namespace emr

#include "actors/supervisor.hpp"

#include <cmath>

namespace emr {

attempt_verdict classify(const upstream_reply& reply, std::string_view provider,
                         std::chrono::system_clock::time_point now) {
  attempt_verdict v;
  auto name = std::string{provider};
  if (reply.status >= 200 && reply.status < 300) {
    if (reply.matrix)
      return v;
    // A body we cannot trust is never retried into someone's vectors, nor handed out.
    v.outcome = outcome_class::server_error;
    v.error = failure{502, "provider_error",
                      "provider '" + name + "' returned an unusable answer: " + reply.error_message,
                      -1, name};
    return v;
  }
  if (reply.status == 0) {
    v.outcome = outcome_class::server_error;
    v.retry = true;
    v.error = failure{502, "provider_error",
                      "provider '" + name + "' is unreachable: " + reply.transport_error, -1, name};
    return v;
  }
  v.server_wait = parse_retry_after(reply.retry_after, reply.retry_after_ms, now);
  auto detail = "provider '" + name + "' answered " + std::to_string(reply.status) + ": " +
                reply.error_message;
  if (reply.status == 429) {
    v.outcome = outcome_class::rate_limited;
    v.retry = true;
    v.error = failure{429, "rate_limited", detail,
                      v.server_wait ? v.server_wait->count() : std::int64_t{-1}, name};
    return v;
  }
  // The provider's failure, whoever sent the texts: it counts towards the sin-bin. 401 and 402
  // say emr's key or account is refused, for every caller alike; 403 and 404 stay the caller's,
  // since a caller naming `provider/model` can provoke them for a model of its choosing.
  if (reply.status >= 500 || reply.status == 401 || reply.status == 402 ||
      is_retryable(reply.status)) {
    v.outcome = outcome_class::server_error;
    v.retry = is_retryable(reply.status);
    v.error = failure{502, "provider_error", detail, -1, name};
    return v;
  }
  v.outcome = outcome_class::caller_error;
  if (reply.status == 400 || reply.status == 413 || reply.status == 422) {
    v.splittable = true;
    v.error = failure{400, "invalid_request", detail, -1, name};
  } else {
    // 403, 404 and the like: emr's registration (or a caller's model) is wrong, not the input.
    v.error = failure{502, "provider_error", detail, -1, name};
  }
  return v;
}

std::optional<std::chrono::milliseconds> supervisor_state::on_reply(supervisor_actor::pointer self,
                                                                    const upstream_reply& reply) {
  ++attempts;
  auto v = classify(reply, job.provider, std::chrono::system_clock::now());
  self->send(job.health, atom::report::value,
             call_report{job.provider, v.outcome, reply.latency,
                         v.server_wait ? v.server_wait->count() : -1, job.probe});
  // Both say the provider has more work than it can take: fewer, fuller calls help.
  if (v.outcome == outcome_class::rate_limited || reply.timed_out)
    congestion = true;
  rate_limited = rate_limited || v.outcome == outcome_class::rate_limited;
  if (reply.limits.any())
    limits = reply.limits;
  if (!v.error) {
    batch_outcome answered{job.batch_id, reply.matrix, std::nullopt, false, congestion, attempts};
    answered.latency = reply.latency;
    settle(self, std::move(answered));
    return std::nullopt;
  }
  if (v.retry && !job.probe)
    if (auto wait = schedule.next_wait(
            attempts, v.server_wait,
            std::chrono::duration_cast<std::chrono::milliseconds>(self->clock().now() - started)))
      return wait;
  settle(self, batch_outcome{job.batch_id, nullptr, std::move(v.error), v.splittable, congestion,
                             attempts});
  return std::nullopt;
}

void supervisor_state::settle(supervisor_actor::pointer self, batch_outcome outcome) {
  outcome.worker_blocked = worker_blocked;
  outcome.rate_limited = rate_limited;
  outcome.limits = limits;
  self->send(job.batcher, atom::done::value, std::move(outcome));
  self->quit();
}

namespace {

using supervisor_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

// Settles with the failure of `reply` instead of the retry it would have earned.
void give_up(supervisor_ptr self, const upstream_reply& reply) {
  auto& st = self->state;
  auto verdict = classify(reply, st.job.provider, std::chrono::system_clock::now());
  st.settle(self, batch_outcome{st.job.batch_id, nullptr, std::move(verdict.error), false,
                                st.congestion, st.attempts});
}

void retry_after_wait(supervisor_ptr self, std::chrono::milliseconds wait,
                      const upstream_reply& reply) {
  // An answer that comes after every caller stopped waiting would only cost the provider a call:
  // the callers still here hear the failure now, in time to try another provider.
  if (self->clock().now() + wait >= self->state.job.callers_wait_until) {
    give_up(self, reply);
    return;
  }
  self->delayed_send(self, wait, atom::retry::value);
}

void attempt(supervisor_ptr self) {
  auto& job = self->state.job;
  self->request(job.worker, job.attempt_timeout, atom::call::value, job.call)
      .then(
          [self](const upstream_reply& reply) {
            if (auto wait = self->state.on_reply(self, reply))
              retry_after_wait(self, *wait, reply);
          },
          [self](caf::error& err) {
            auto& st = self->state;
            // The worker is still inside the call: another one would wait behind it in its mailbox
            // and reach the provider after every caller was answered. So the batch ends here, and
            // the batcher keeps the worker apart until it answers.
            st.worker_blocked = true;
            upstream_reply timeout;
            timeout.timed_out = true;
            timeout.transport_error = "no answer within " +
                                      std::to_string(st.job.attempt_timeout.count()) + " ms (" +
                                      self->system().render(err) + ")";
            if (st.on_reply(self, timeout))
              give_up(self, timeout);
          });
}

} // namespace

supervisor_actor::behavior_type
retry_supervisor(supervisor_actor::stateful_pointer<supervisor_state> self, supervisor_job job) {
  self->state.schedule = retry_schedule{job.retry, job.seed};
  self->state.started = self->clock().now();
  self->state.job = std::move(job);
  attempt(self);
  return {
      [self](atom::retry) { attempt(self); },
      [self](atom::wait_until, clock_time until) {
        auto& job = self->state.job;
        job.callers_wait_until = std::max(job.callers_wait_until, until);
      },
  };
}

} // namespace emr

#pragma once
// The retry supervisor: owns one upstream batch call, classifies each attempt, waits out
// backoffs on timers (never a sleeping thread), and settles the batch exactly once.

#include "actors/actors.hpp"
#include "actors/retry_schedule.hpp"

namespace emr {

/// Everything a supervisor needs to run one batch call.
struct supervisor_job {
  std::uint64_t batch_id = 0;
  std::string provider;
  upstream_call call;
  upstream_actor worker;
  batcher_actor batcher;
  health_actor health;
  retry_settings retry;
  std::chrono::milliseconds attempt_timeout{40'000}; ///< backstop above the worker's own timeouts
  /// The latest deadline among the call's callers: no attempt starts once all have stopped waiting.
  clock_time callers_wait_until = clock_time::max();
  std::uint64_t seed = 0;
  bool probe = false; ///< probes make one attempt: their outcome is the answer
};

/// How one attempt ended, decided from the worker's reply.
struct attempt_verdict {
  outcome_class outcome = outcome_class::success;
  bool retry = false;
  std::optional<std::chrono::milliseconds> server_wait;
  std::optional<failure> error; ///< what callers get if this is the last attempt
  bool splittable = false;
};

/// Classifies one attempt (pure; unit-tested).
attempt_verdict classify(const upstream_reply& reply, std::string_view provider,
                         std::chrono::system_clock::time_point now);

struct supervisor_state {
  supervisor_job job;
  retry_schedule schedule{{}, 0};
  clock_time started{}; ///< when the first attempt began: the retry budget runs from here
  int attempts = 0;
  bool congestion = false;
  bool rate_limited = false;   ///< an attempt was refused with 429
  rate_limit_headers limits;   ///< the latest answer's
  bool worker_blocked = false; ///< the latest attempt outlived attempt_timeout; see batch_outcome
  static inline const char* name = "retry_supervisor";

  /// Handles the worker's reply to the latest attempt; returns the wait before the next one,
  /// or nullopt once the batch is settled (and reported).
  std::optional<std::chrono::milliseconds> on_reply(supervisor_actor::pointer self,
                                                    const upstream_reply& reply);
  void settle(supervisor_actor::pointer self, batch_outcome outcome);
};

supervisor_actor::behavior_type
retry_supervisor(supervisor_actor::stateful_pointer<supervisor_state> self, supervisor_job job);

} // namespace emr

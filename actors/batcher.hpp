#pragma once
// The batcher: one per provider. Merges every caller's chunks, per batch key, into few, full
// upstream calls; hands each caller exactly its own rows of the answer. The decisions live in
// pure parts (call_queues, in_flight_calls, recent_answers, flush_policy, model_limits); this
// actor wires them to its messages, its workers and its calls' supervisors.

#include "actors/actors.hpp"
#include "actors/arrivals.hpp"
#include "actors/call_cost.hpp"
#include "actors/call_queues.hpp"
#include "actors/fleet_allowance.hpp"
#include "actors/flush_policy.hpp"
#include "actors/histogram.hpp"
#include "actors/in_flight_calls.hpp"
#include "actors/provider_budget.hpp"
#include "actors/recent_answers.hpp"
#include "actors/retry_schedule.hpp"
#include "actors/supervisor.hpp"
#include "actors/upstream.hpp"

#include <functional>
#include <random>

namespace emr {

struct batcher_settings {
  flush_settings flush;
  retry_settings retry;
  upstream_settings upstream;
  std::size_t max_queued_texts = 100'000; ///< beyond this, callers get 503 instead of memory growth
  /// How long a finished call's vectors answer identical texts again; 0 = never.
  std::chrono::milliseconds reuse{1000};
  /// The requests the HTTP threads are still reading; none known without it.
  std::shared_ptr<const arrivals> arriving;
  /// In a fleet: where grants of the providers' shared budgets come from; none alone.
  fleet_budget_actor fleet;
};

/// How a batcher makes the actors it owns. The real ones post to the provider on threads of
/// their own; a test gives stand-ins, so that the batcher's own test needs no sockets or threads.
struct batcher_factories {
  std::function<upstream_actor(caf::local_actor& owner)> worker;
  std::function<supervisor_actor(caf::local_actor& owner, supervisor_job job)> supervisor;
};

/// Detached upstream workers posting to the provider, and retry supervisors.
batcher_factories real_factories(const provider_spec& spec, upstream_settings settings);

/// A caller's message whose chunks are not all answered yet.
struct waiting_message {
  caf::typed_response_promise<chunk_results> promise;
  chunk_results answers;
  std::size_t left = 0; ///< chunks still unanswered
};

/// The actors behind one upstream call.
struct call_actors {
  upstream_actor worker;
  supervisor_actor supervisor;
};

struct batcher_state {
  batcher_actor::pointer self = nullptr;
  provider_spec spec;
  std::shared_ptr<const embedding_provider> adapter;
  batcher_settings settings;
  batcher_factories factories;
  health_actor health;
  flush_policy policy{{}};
  call_queues queues;
  in_flight_calls calls;
  std::unordered_map<std::uint64_t, call_actors> actors_of; ///< by call id
  recent_answers recent;
  provider_budget budget;
  fleet_allowance allowance;
  call_cost cost;
  clock_time last_call_started{};
  /// Seeds each call's retry jitter: one random_device read per batcher, not one per call.
  std::mt19937_64 jitter_seeds{std::random_device{}()};
  /// Callers' messages, by the number their chunks carry; numbers are reused once answered.
  std::vector<waiting_message> messages;
  std::vector<std::uint32_t> free_messages;
  std::vector<upstream_actor> idle_workers;
  std::vector<upstream_actor> all_workers; ///< every live worker: idle, in a call, or blocked
  /// Workers still inside a call their supervisor gave up on: handed no call until they answer.
  std::size_t blocked_workers = 0;
  provider_condition condition;
  bool draining = false;
  bool hurrying = false; ///< shutdown: no holds, but new chunks still welcome
  std::uint64_t timer_generation = 0;
  std::optional<clock_time> timer_due;

  /// The counters, kept as things happen; stats() adds the state of the moment.
  batcher_stats counted;
  std::uint64_t chunks_flushed = 0; ///< chunks in flushed batches, for the compression ratio

  static inline const char* name = "batcher";

  batcher_state() = default;
  /// Exit cleanup: stops the workers, answers every caller still held (queued, put back or in
  /// flight) with a 502 naming the provider and stops the calls' supervisors. CAF 0.17 drops an
  /// undelivered promise without a word, so a batcher that died (an exception, a kill) would
  /// leave its callers waiting out their deadlines; a drained batcher holds nobody by then.
  ~batcher_state();
  batcher_state(const batcher_state&) = delete;
  batcher_state& operator=(const batcher_state&) = delete;

  clock_time now() const;
  /// Takes a caller's chunks; answers once every one is answered.
  caf::result<chunk_results> enqueue(chunk_requests&& message);
  /// Queues a chunk, has it join a call carrying its texts, or answers it at once (returned)
  /// when it cannot be served or a recent call already answered it.
  std::optional<chunk_result> admit(chunk_request&& request, chunk_caller caller, clock_time now);
  /// Hands a chunk's answer to its caller's message; the message is answered with its last.
  void answer(chunk_caller caller, chunk_result&& result);
  /// Starts every call that may start now, and arms a timer for the next decision.
  void pump();
  /// When the next call may go by the provider's budget, this replica's and the fleet's.
  clock_time next_send(clock_time now) const;
  /// Asks the fleet for a grant when one is due.
  void ask_fleet(clock_time now);
  /// The fleet's answer: a grant, a pause to keep, or no answer (then this replica spends its
  /// share of the limit on its own).
  void on_grant(const budget_grant& grant);
  /// Another replica's call was refused with 429 for `seconds`: the whole fleet waits.
  void on_fleet_pause(double seconds);
  /// A batch ready to go, and how the flush policy let it go.
  struct flush_choice {
    batch_key key;
    std::vector<pending_chunk> chunks;
    bool held = false;        ///< the policy held it for company
    bool burst_ended = false; ///< it went because its arrivals stopped
  };
  /// Takes the longest-waiting key's chunks that fit one call, if its flush is due.
  std::optional<flush_choice> take_batch(clock_time now, std::optional<clock_time>& recheck);
  /// Into how many calls a batch goes: more than one only when it opens a busy spell (see
  /// batcher.cpp).
  std::size_t calls_for(clock_time now, const std::vector<pending_chunk>& chunks) const;
  void start(batch_key key, std::vector<pending_chunk> chunks, bool probe);
  /// A call the provider refused for longer than its supervisor would wait: its callers that can
  /// outlast the refusal go back to the head of the queue, the others hear it now.
  void requeue(in_flight_call& call, const failure& refused);
  void settle(batch_outcome&& outcome);
  /// Adds a worker to the idle list.
  void spawn_worker();
  /// A call's worker is back from its batch: idle again, or kept apart while it is still blocked.
  void release_worker(upstream_actor worker, bool blocked);
  /// A blocked worker answered at last: it rejoins, unless a replacement took its place.
  void unblock_worker(const upstream_actor& worker);
  void fail_chunks(std::vector<pending_chunk>& chunks, const failure& error);
  /// Fails the waiting chunks whose callers stop waiting by `by` (every one by default); the
  /// others stay queued. Returns how many were failed.
  std::size_t fail_waiting(const failure& error, clock_time by = clock_time::max());
  /// Drops queued chunks whose callers stopped waiting, so that they are never sent.
  void drop_expired(clock_time now);
  void apply(const provider_condition& condition);
  void run_probe();
  void arm_timer(clock_time due);
  bool finished_draining() const;
  batcher_stats stats();
};

/// @param spec the provider as registered
/// @param health receives every attempt's outcome and pushes verdicts back
/// @param factories make its workers and its calls' supervisors (real_factories outside tests)
batcher_actor::behavior_type batcher(batcher_actor::stateful_pointer<batcher_state> self,
                                     provider_spec spec, batcher_settings settings,
                                     health_actor health, batcher_factories factories);

} // namespace emr

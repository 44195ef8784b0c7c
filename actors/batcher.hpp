#pragma once
// The batcher: one per provider. Merges every caller's chunks, per batch key, into few, full
// upstream calls; hands each caller exactly its own rows of the answer.

#include "actors/actors.hpp"
#include "actors/flush_policy.hpp"
#include "actors/histogram.hpp"
#include "actors/retry_schedule.hpp"
#include "actors/upstream.hpp"

#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace emr {

struct batcher_settings {
  flush_settings flush;
  retry_settings retry;
  upstream_settings upstream;
  std::size_t max_queued_texts = 100'000; ///< beyond this, callers get 503 instead of memory growth
  /// How long a finished call's vectors answer identical texts again; 0 = never.
  std::chrono::milliseconds reuse{1000};
};

/// A chunk waiting for, or riding in, an upstream call.
struct pending_chunk {
  std::vector<std::string> texts;
  std::size_t tokens = 0; ///< estimated
  std::string request_id;
  caf::typed_response_promise<chunk_result> promise;
  clock_time arrived{};
  clock_time deadline = clock_time::max(); ///< see chunk_request::deadline
};

/// A group of callers' chunks still to come under one key (see chunk_request::group).
struct awaited_group {
  std::uint32_t left = 0;
  clock_time since{}; ///< its first chunk's arrival: the wait for the rest ends a window later
};

/// Chunks sharing a batch key, oldest first.
struct key_queue {
  std::deque<pending_chunk> chunks;
  std::size_t texts = 0;
  std::unordered_map<std::uint64_t, awaited_group> awaited; ///< by group id
  /// The front chunks that fit one call. A call carries each text once, so it is counted in
  /// distinct texts; it grows as chunks arrive, so deciding a flush never rescans the queue.
  struct call_prefix {
    std::unordered_set<std::string_view> seen; ///< views into the texts of `chunks`
    std::size_t chunks = 0, texts = 0, distinct = 0;
    std::size_t tokens = 0; ///< of chunks that added a text: never less than the call's
    bool closed = false;    ///< a chunk did not fit: the rest wait for a later call
  } prefix;
  /// Counts `chunk`, just queued, into the prefix if it fits.
  void extend_prefix(const pending_chunk& chunk, const batch_limits& limits);
  /// Counts the prefix anew, after chunks left the queue.
  void recount_prefix(const batch_limits& limits);
};

/// An upstream call in progress and the callers whose rows it carries.
struct in_flight_batch {
  batch_key key;
  std::vector<pending_chunk> chunks;
  std::vector<std::vector<std::uint32_t>> rows; ///< per chunk: matrix row of each text
  /// Matrix row of each distinct text sent; views into the texts of the chunks it was sent for.
  std::unordered_map<std::string_view, std::uint32_t> row_of;
  std::size_t tokens = 0;
  upstream_actor worker;
  clock_time callers_wait_until{}; ///< the latest deadline of its chunks: no retry starts after it
  bool partial = false; ///< less than a full batch (the flush policy sends one at a time)
  supervisor_actor supervisor;
  std::string upstream_id;
  bool probe = false;
};

/// A finished call's vectors, kept for batcher_settings::reuse so that identical texts asked
/// again (a burst of callers sharing texts outlasts one call) are answered without a call.
struct recent_answer {
  std::uint64_t seq = 0; ///< kept calls are numbered in order; see batcher_state::recent_by_text
  batch_key key;
  clock_time expires{};
  shared_matrix matrix;
  std::size_t tokens = 0; ///< estimated tokens of the call, to share its usage out
  std::string upstream_id;
  std::vector<std::vector<std::string>> texts; ///< the call's chunks' texts, moved out of them
  std::unordered_map<std::string_view, std::uint32_t> row_of; ///< views into `texts`
};

struct batcher_state {
  batcher_actor::pointer self = nullptr;
  provider_spec spec;
  std::shared_ptr<const embedding_provider> adapter;
  batch_limits limits;
  batcher_settings settings;
  health_actor health;
  flush_policy policy{{}};
  std::map<batch_key, key_queue> queues;
  std::map<batch_key, std::size_t> partial_calls; ///< partial calls out, per key (Nagle)
  std::deque<std::pair<batch_key, std::vector<pending_chunk>>>
      isolated; ///< halves of a rejected batch
  std::unordered_map<std::uint64_t, in_flight_batch> in_flight;
  std::deque<recent_answer> recent; ///< oldest first, numbered without gaps
  std::uint64_t next_recent_seq = 0;
  /// The newest kept call carrying each text, by its number; the views are into that call's texts.
  std::unordered_map<std::string_view, std::uint64_t> recent_by_text;
  std::vector<upstream_actor> idle_workers;
  std::vector<upstream_actor> all_workers; ///< every live worker: idle, in a call, or blocked
  /// Workers still inside a call their supervisor gave up on: handed no call until they answer.
  std::size_t blocked_workers = 0;
  clock_time next_expiry = clock_time::max(); ///< no queued chunk's deadline is earlier
  provider_condition condition;
  bool draining = false;
  bool hurrying = false; ///< shutdown: no holds, but new chunks still welcome
  std::uint64_t next_batch_id = 1;
  std::uint64_t timer_generation = 0;
  std::optional<clock_time> timer_due;
  std::size_t queued_texts = 0;

  // Counters reported by status().
  std::uint64_t chunks_received = 0;
  std::uint64_t batches_flushed = 0;
  std::uint64_t texts_flushed = 0; ///< texts callers asked for, across flushed batches
  std::uint64_t texts_sent = 0;    ///< distinct texts sent upstream
  std::uint64_t chunks_flushed = 0;
  std::uint64_t chunks_joined = 0; ///< chunks answered by a call already out with their texts
  std::uint64_t chunks_reused = 0; ///< chunks answered from a recent call's vectors
  std::uint64_t max_texts_per_call = 0;
  std::uint64_t upstream_attempts = 0;
  std::uint64_t retries = 0;
  histogram texts_per_call{histogram::size_bounds()};
  std::uint64_t batches_failed = 0;
  std::uint64_t batches_split = 0;
  std::uint64_t rejected_overload = 0;
  std::uint64_t chunks_expired = 0; ///< queued chunks dropped unsent: their callers stopped waiting
  /// Chunks refused at once because a rate-limit pause outlasts their callers' wait.
  std::uint64_t chunks_refused_paused = 0;

  static inline const char* name = "batcher";

  batcher_state() = default;
  /// Exit cleanup: stops the workers (detached, a thread each), answers every caller still held
  /// (queued, isolated or in flight) with a 502 naming the provider and stops the calls'
  /// supervisors. CAF 0.17 drops an undelivered promise without a word, so a batcher that died
  /// (an exception, a kill) would leave its callers waiting out their deadlines; a drained
  /// batcher holds nobody by the time it exits.
  ~batcher_state();
  batcher_state(const batcher_state&) = delete;
  batcher_state& operator=(const batcher_state&) = delete;

  clock_time now() const;
  /// Takes a caller's chunk: counts it into its group, then admits it.
  caf::result<chunk_result> enqueue(chunk_request&& request);
  /// Validates and queues a chunk, or answers at once when it cannot be served.
  caf::result<chunk_result> admit(chunk_request&& request, clock_time now);
  /// Counts a grouped chunk in, however it is then answered, so its siblings stop waiting for
  /// it; true when it was the group's last under its key.
  bool count_group_arrival(const chunk_request& request, clock_time now);
  /// Until when a queue waits for the rest of a group; nothing once every group is in or the
  /// window of its first chunk (or of the queue's oldest) is over.
  std::optional<clock_time> group_wait(key_queue& queue, clock_time now);
  /// Adds a chunk whose every text is already in a call of its key to that call; false if none.
  bool join_in_flight(const batch_key& key, pending_chunk& chunk);
  /// The vectors of the newest kept call with the first of these texts, if it carried them all.
  std::optional<chunk_result> reuse_recent(const batch_key& key,
                                           const std::vector<std::string>& texts, clock_time now);
  /// Keeps a successful call's vectors for reuse, taking its texts: its callers are answered.
  void remember(in_flight_batch&& batch, const shared_matrix& matrix, clock_time now);
  /// Drops the oldest kept call and the index entries that lead to it.
  void forget_oldest_recent();
  /// Starts every call that may start now, and arms a timer for the next decision.
  void pump();
  /// A batch ready to go, and how the flush policy let it go.
  struct flush_choice {
    batch_key key;
    std::vector<pending_chunk> chunks;
    bool held = false;    ///< the policy held it for company
    bool partial = false; ///< it is not a full batch
  };
  /// Takes the longest-waiting key's chunks that fit one call, if its flush is due.
  std::optional<flush_choice> take_batch(clock_time now, std::optional<clock_time>& recheck);
  void start(batch_key key, std::vector<pending_chunk> chunks, bool probe, bool partial);
  void settle(batch_outcome&& outcome);
  /// Adds a worker to the idle list.
  void spawn_worker();
  /// A call's worker is back from its batch: idle again, or kept apart while it is still blocked.
  void release_worker(upstream_actor worker, bool blocked);
  /// A blocked worker answered at last: it rejoins, unless a replacement took its place.
  void unblock_worker(const upstream_actor& worker);
  void fail_chunks(std::vector<pending_chunk>& chunks, const failure& error);
  /// Fails the queued chunks whose callers stop waiting by `by` (every one by default); the
  /// others stay queued. Returns how many were failed.
  std::size_t fail_queued(const failure& error, clock_time by = clock_time::max());
  /// Drops queued chunks whose callers stopped waiting, so that they are never sent.
  void drop_expired(clock_time now);
  void apply(const provider_condition& condition);
  void run_probe();
  void arm_timer(clock_time due);
  bool finished_draining() const;
  boost::json::object status();
};

/// @param spec the provider as registered
/// @param health receives every attempt's outcome and pushes verdicts back
batcher_actor::behavior_type batcher(batcher_actor::stateful_pointer<batcher_state> self,
                                     provider_spec spec, batcher_settings settings,
                                     health_actor health);

} // namespace emr

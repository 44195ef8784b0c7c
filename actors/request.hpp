#pragma once
// The request actor: one per in-flight caller (one per batch API request, for all its
// sub-requests). Splits each caller's input into chunks that fit one upstream call, sends each
// batcher its chunks in one message, and assembles every caller's answer in order.

#include "actors/actors.hpp"
#include "actors/arrivals.hpp"
#include "actors/embedding_cache.hpp"
#include "actors/outcome_slot.hpp"

#include <atomic>
#include <map>

namespace emr {

/// A provider as a caller's request sees it.
struct provider_route {
  std::string name;
  provider_type type = provider_type::voyage;
  std::string model;
  std::size_t max_batch = 0; ///< the operator's, for model_limits of another model
  batch_limits limits;       ///< of `model`
  batcher_actor batcher;
  std::shared_ptr<const embedding_provider> adapter;
  std::string cache_scope; ///< the provider's part of its vectors' keys in the embedding cache
};

enum class routing_policy { any, all };

/// What the embedding cache may do for one caller: answer its texts, and keep their new vectors.
struct cache_use {
  bool read = true;
  bool write = true;
};

/// Everything the HTTP layer learned from one caller's request.
struct caller_job {
  std::vector<std::string> texts;
  std::string input_type;
  int dimensions = 0;
  std::vector<provider_route> routes;
  routing_policy policy = routing_policy::any;
  std::chrono::milliseconds deadline{60'000};
  std::string request_id;
  cache_use cache;
  std::int64_t tenant = 0; ///< the caller key's id: see chunk_request::tenant
};

/// One provider's vectors for the caller's whole input: the chunks' rows, in input order.
struct provider_answer {
  std::string provider;
  std::string model;
  std::vector<chunk_result> chunks;
  std::int64_t tokens = 0;
  std::size_t cached_texts = 0; ///< answered from the embedding cache
  /// This caller's share of the upstream calls its texts rode.
  double upstream_calls() const;
  /// Calls f(row pointer, dims) once per caller text, in input order.
  template <class F> void for_each_vector(F&& f) const {
    for (const auto& chunk : chunks)
      for (auto row : chunk.rows)
        f(chunk.matrix->row(row), chunk.matrix->dims);
  }
};

struct caller_outcome {
  std::vector<provider_answer> answers; ///< any: the provider that served; all: every provider
  std::optional<failure> error;
  /// What providers billed for this caller's texts on routes that failed: no vector came back
  /// for them, but they were spent, and the caller's key is charged them.
  std::int64_t unanswered_tokens = 0;
};

/// Where a caller's outcome goes: its request actor sets it, its HTTP thread takes it.
using caller_slot = std::shared_ptr<outcome_slot<caller_outcome>>;

/// The least time an `any` route is given before the caller moves on: shorter, a provider has
/// no real chance to answer, and the caller would run through its routes on the clock alone.
inline constexpr std::chrono::milliseconds min_route_share{250};

/// How long an `any` caller waits for one route with `left` until its deadline and `routes_left`
/// routes (this one included) still to try: an equal share of what is left, at least
/// min_route_share, and everything left for the last route. A route that does not answer within
/// its share leaves the rest for the others.
std::chrono::milliseconds route_share(std::chrono::milliseconds left, std::size_t routes_left);

/// Combines the failures of every provider tried into the one failure a caller sees.
failure combine_failures(const std::vector<failure>& failures);

/// Where each chunk that respects the provider's texts and tokens per call ends: one past its
/// last text's index. Counting chunks needs no copy of the texts.
std::vector<std::size_t> chunk_ends(const std::vector<std::string>& texts,
                                    const batch_limits& limits);
/// Splits texts into those chunks.
std::vector<std::vector<std::string>> split_into_chunks(const std::vector<std::string>& texts,
                                                        const batch_limits& limits);

/// What the embedding cache held of a caller's texts for one route.
struct route_lookup {
  std::vector<cache_key> keys;                    ///< per text; empty when the cache is not used
  std::vector<std::optional<cached_vector>> hits; ///< per text; empty when none was found
  std::vector<std::uint32_t> sent; ///< the index of each text sent upstream; empty: every text
};

/// One caller's way through its routes.
struct caller_progress {
  caller_job job;
  caller_slot out;
  clock_time deadline{};
  std::size_t next_route = 0;                        ///< any: the route being tried
  std::size_t routes_unsettled = 0;                  ///< all: the routes not yet settled
  std::vector<std::size_t> chunks_left;              ///< per route
  std::vector<std::chrono::milliseconds> route_wait; ///< per route: how long it was given
  /// Per route: its time ran out before the message carrying its chunks was answered, so that
  /// answer, when it comes, is not this route's any more.
  std::vector<char> route_over;
  std::vector<provider_answer> answers;
  std::vector<std::int64_t> upstream_tokens; ///< per route: what its answered chunks were billed
  std::vector<route_lookup> lookups;         ///< per route
  std::vector<std::optional<failure>> route_errors;
  std::vector<failure> failures;
  bool answered = false;
  void finish(caller_outcome outcome);
};

struct request_state {
  std::vector<caller_progress> callers;
  std::size_t unanswered = 0;
  std::shared_ptr<embedding_cache> cache; ///< none: every text goes upstream
  static inline const char* name = "request";

  request_state();
  ~request_state();
  request_state(const request_state&) = delete;
  request_state& operator=(const request_state&) = delete;
};

/// Number of request actors alive right now (for stats and leak tests).
std::int64_t live_request_actors();
std::uint64_t spawned_request_actors();

/// A one-shot actor: it quits once every caller has its answer, each through its own promise
/// (`outs` pairs with `jobs`). `arriving` counts the request as on its way to the batchers until
/// its chunks are sent. Texts `cache` holds for a route are answered from it, and only the rest
/// go to the route's batcher.
caf::behavior request(caf::stateful_actor<request_state>* self, std::vector<caller_job> jobs,
                      std::vector<caller_slot> outs, arrivals::in_transit arriving,
                      std::shared_ptr<embedding_cache> cache);

} // namespace emr

#pragma once
// The values that travel between emr's actors. All are local-only (never serialized), so they
// are whitelisted for CAF at the end of actors.hpp instead of being given inspect() overloads.

#include "providers/provider.hpp"
#include "providers/rate_limits.hpp"
#include "providers/shared_budget.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace emr {

using clock_time = std::chrono::steady_clock::time_point;
using shared_matrix = std::shared_ptr<const embedding_matrix>;

/// Texts whose parameters differ never share an upstream call.
struct batch_key {
  std::string model;
  std::string input_type;
  int dimensions = 0;
  bool operator==(const batch_key&) const = default;
  auto operator<=>(const batch_key&) const = default;
};

/// Why a caller (or one of its chunks) got no vectors: what the HTTP layer answers.
struct failure {
  int status = 502; ///< HTTP status for the caller
  std::string type; ///< error type, e.g. "provider_error", "rate_limited"
  std::string message;
  std::int64_t retry_after_ms = -1; ///< >= 0 when the caller should be told when to retry
  std::string provider;
};

/// One caller's texts for one upstream call: never larger than the provider's per-call limits.
struct chunk_request {
  batch_key key;
  std::vector<std::string> texts;
  std::string request_id;
  /// When the caller stops waiting for this chunk: its deadline, or under `any` the end of this
  /// route's share of it. The batcher never sends the chunk, nor retries a call for it, later.
  clock_time deadline = clock_time::max();
  /// Whose chunk it is (the caller key's id; 0: emr's own, e.g. a provider test): calls are
  /// shared fairly between tenants.
  std::int64_t tenant = 0;
};

/// The batcher's answer to a chunk: rows of a shared matrix (no copy per caller), or a failure.
struct chunk_result {
  shared_matrix matrix;
  std::vector<std::uint32_t> rows; ///< matrix row of each text of the chunk, in order
  std::int64_t tokens = 0;         ///< this chunk's share of the call's token usage
  std::optional<failure> error;
  std::string upstream_id; ///< X-Request-Id of the upstream call, for the access log
  double call_share = 0;   ///< this chunk's share of its call, by estimated tokens: who pays for it
};

/// What one request actor sends one batcher at once: every chunk of its callers for that
/// provider (a batch API request's sub-requests all travel together), so they are queued before
/// the batcher next decides what to send, and share calls.
struct chunk_requests {
  std::vector<chunk_request> chunks;
};

/// The answers to a chunk_requests message, in its order.
struct chunk_results {
  std::vector<chunk_result> results;
};

/// One HTTP attempt as the upstream worker made it.
struct upstream_call {
  std::string body;
  std::size_t rows = 0;
  std::string request_id;
  std::size_t dims = 0; ///< every row's length in the answer; 0 = the provider's, alike in all
};

/// How one HTTP attempt ended. status 0 means no HTTP answer (connect, read or write failure).
struct upstream_reply {
  int status = 0;
  std::string transport_error;
  bool timed_out = false;     ///< no answer within the read timeout
  std::string retry_after;    ///< Retry-After header, verbatim
  std::string retry_after_ms; ///< retry-after-ms header, verbatim
  std::string error_message;  ///< provider's message for non-2xx, decode error for bad 2xx
  shared_matrix matrix;       ///< set for a 2xx body that decoded cleanly
  std::chrono::microseconds latency{0};
  rate_limit_headers limits{}; ///< what the answer said about the provider's rate limits
};

/// The health-relevant class of an attempt's outcome.
enum class outcome_class : std::uint8_t {
  success,
  rate_limited, ///< 429: its own state, not ill health
  server_error, ///< 5xx, transport failure, timeout, malformed answer
  caller_error, ///< other 4xx: the request, not the provider, was at fault
};

/// One upstream attempt, reported to the health actor.
struct call_report {
  std::string provider;
  outcome_class outcome = outcome_class::success;
  std::chrono::microseconds latency{0};
  std::int64_t retry_after_ms = -1;
  bool probe = false;
};

/// What a retry supervisor tells its batcher once a batch is settled.
struct batch_outcome {
  std::uint64_t batch_id = 0;
  shared_matrix matrix;
  std::optional<failure> error;
  bool splittable = false; ///< a 400/413/422 that one caller's text may have caused
  bool congestion = false; ///< a 429 or timeout was seen: the call window should shrink
  int attempts = 0;
  /// The worker gave no answer within the supervisor's patience and is still inside that call.
  bool worker_blocked = false;
  /// Refused with 429 at least once: the provider's limit is at most what was sent before it.
  bool rate_limited = false;
  /// The latest answer's rate-limit headers, for the batcher's budget.
  rate_limit_headers limits{};
  /// How long the provider took over the answered attempt, as its worker timed it: what the call
  /// cost, without the time emr's own actors took to pass it on.
  std::chrono::microseconds latency{0};
};

/// The health actor's verdict on a provider, pushed to its batcher.
struct provider_condition {
  bool sin_binned = false;
  clock_time sin_bin_until{};
  clock_time paused_until{}; ///< a rate limit's Retry-After: hold flushes, not ill health
};

} // namespace emr

#pragma once
// What the batcher and the health actor report when asked for their numbers, each field declared
// once by `describe` (see stat_field.hpp).

#include "actors/histogram.hpp"
#include "actors/stat_field.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace emr {

/// One batch key's queue, as the batcher reports it.
struct queue_stats {
  std::string model;
  std::string input_type;
  std::int64_t dimensions = 0;
  std::uint64_t queued_texts = 0;
  std::uint64_t queued_callers = 0;
};

template <class F> void describe(const queue_stats& s, F&& f) {
  f(s.model, {"model"});
  f(s.input_type, {"input_type"});
  f(s.dimensions, {"dimensions"});
  f(s.queued_texts, {"queued_texts"});
  f(s.queued_callers, {"queued_callers"});
}

/// A batcher's numbers: its provider, its queues, its flush policy's state and its counters.
struct batcher_stats {
  std::string provider;
  std::string type;
  std::string model;
  std::vector<queue_stats> queues;
  std::uint64_t queued_texts = 0;
  std::uint64_t queued_callers = 0;
  std::uint64_t max_texts_per_call = 0;
  std::uint64_t max_tokens_per_call = 0;
  std::uint64_t call_window = 0;
  std::uint64_t in_flight_calls = 0;
  std::uint64_t live_supervisors = 0;
  bool holding_for_company = false;
  std::int64_t hold_gap_us = 0;
  std::int64_t flush_window_ms = 0;
  std::int64_t paused_for_ms = 0;
  /// The provider's limits in force, where each comes from, and what they leave of the last
  /// minute (-1: no limit known).
  std::uint64_t requests_per_minute = 0;
  std::string requests_limit_source;
  std::int64_t requests_left = -1;
  std::uint64_t tokens_per_minute = 0;
  std::string tokens_limit_source;
  std::int64_t tokens_left = -1;
  /// The batch size worth a call right now: 1 while the budget lasts, up to a full call as it runs
  /// out.
  std::uint64_t flush_threshold = 1;
  std::int64_t paced_for_ms = 0; ///< until the budget lets the next call go; -1: a grant is asked
  /// Whether the provider's limits are shared with a fleet: "alone", "fleet", or "fleet offline"
  /// (the ledger is out of reach and this replica spends a 1/fleet_replicas share on its own).
  std::string budget_sharing;
  std::uint64_t fleet_replicas = 1;
  std::uint64_t fleet_grants = 0;     ///< grants taken of the fleet's shared budget
  std::uint64_t granted_requests = 0; ///< calls the grant in hand still allows
  std::uint64_t chunks_received = 0;
  std::uint64_t batches_flushed = 0;
  std::uint64_t texts_flushed = 0;
  std::uint64_t texts_sent = 0;
  std::uint64_t chunks_joined = 0;
  std::uint64_t chunks_reused = 0;
  std::uint64_t largest_call_texts = 0;
  double mean_texts_per_call = 0;
  double compression = 0;
  std::uint64_t upstream_attempts = 0;
  std::uint64_t retries = 0;
  histogram texts_per_call{histogram::size_bounds()};
  std::uint64_t batches_failed = 0;
  std::uint64_t batches_split = 0;
  std::uint64_t batches_requeued = 0;
  std::uint64_t calls_spread = 0;
  double upstream_call_ms = 0;      ///< how long a call takes, smoothed
  double upstream_us_per_token = 0; ///< what a further token adds to a call, as answers show it
  std::uint64_t rejected_overload = 0;
  std::uint64_t chunks_expired = 0;
  std::uint64_t chunks_refused_paused = 0;
  std::uint64_t workers = 0;
  std::uint64_t blocked_workers = 0;
  std::uint64_t mailbox_size = 0;
  bool draining = false;
};

template <class F> void describe(const batcher_stats& s, F&& f) {
  using enum metric_type;
  f(s.provider, {"provider"});
  f(s.type, {"type"});
  f(s.model, {"model"});
  f(s.queues, {"queues"});
  f(s.queued_texts,
    {"queued_texts", gauge, "emr_queued_texts", "Texts waiting in a provider's queues."});
  f(s.queued_callers, {"queued_callers", gauge, "emr_queued_chunks",
                       "Callers' chunks waiting in a provider's queues."});
  f(s.max_texts_per_call, {"max_texts_per_call"});
  f(s.max_tokens_per_call, {"max_tokens_per_call"});
  f(s.call_window, {"call_window", gauge, "emr_call_window",
                    "Concurrent upstream calls the provider may have (AIMD)."});
  f(s.in_flight_calls,
    {"in_flight_calls", gauge, "emr_in_flight_calls", "Upstream calls in progress."});
  f(s.live_supervisors, {"live_supervisors"});
  f(s.holding_for_company, {"holding_for_company"});
  f(s.hold_gap_us, {"hold_gap_us"});
  f(s.flush_window_ms, {"flush_window_ms"});
  f(s.paused_for_ms, {"paused_for_ms"});
  f(s.requests_per_minute, {"requests_per_minute", gauge, "emr_rate_limit_requests_per_minute",
                            "A provider's requests-per-minute limit in force (0: none known)."});
  f(s.requests_limit_source, {"requests_limit_source"});
  f(s.requests_left, {"requests_left", gauge, "emr_rate_limit_requests_left",
                      "Requests the limit leaves of the last minute (-1: no limit known)."});
  f(s.tokens_per_minute, {"tokens_per_minute", gauge, "emr_rate_limit_tokens_per_minute",
                          "A provider's tokens-per-minute limit in force (0: none known)."});
  f(s.tokens_limit_source, {"tokens_limit_source"});
  f(s.tokens_left, {"tokens_left", gauge, "emr_rate_limit_tokens_left",
                    "Tokens the limit leaves of the last minute (-1: no limit known)."});
  f(s.flush_threshold, {"flush_threshold", gauge, "emr_flush_threshold_texts",
                        "The batch size worth an upstream call now, by the budget left."});
  f(s.paced_for_ms, {"paced_for_ms"});
  f(s.budget_sharing, {"budget_sharing"});
  f(s.fleet_replicas, {"fleet_replicas", gauge, "emr_fleet_replicas",
                       "Replicas sharing a provider's limits, as this one last counted."});
  f(s.fleet_grants, {"fleet_grants", counter, "emr_fleet_budget_grants_total",
                     "Grants a provider's batcher took of the fleet's shared budget."});
  f(s.granted_requests, {"granted_requests"});
  f(s.chunks_received, {"chunks_received", counter, "emr_chunks_total",
                        "Callers' chunks a provider's batcher took in."});
  f(s.batches_flushed,
    {"batches_flushed", counter, "emr_upstream_batches_total", "Upstream batch calls started."});
  f(s.texts_flushed, {"texts_flushed", counter, "emr_texts_total",
                      "Texts callers asked for, across upstream calls."});
  f(s.texts_sent, {"texts_sent", counter, "emr_upstream_texts_total",
                   "Distinct texts sent upstream (after de-duplication)."});
  f(s.chunks_joined, {"chunks_joined", counter, "emr_chunks_joined_total",
                      "Chunks answered by a call already out with their texts."});
  f(s.chunks_reused, {"chunks_reused", counter, "emr_chunks_reused_total",
                      "Chunks answered from a just-answered call's vectors."});
  f(s.largest_call_texts, {"largest_call_texts"});
  f(s.mean_texts_per_call, {"mean_texts_per_call"});
  f(s.compression, {"compression"});
  f(s.upstream_attempts, {"upstream_attempts"});
  f(s.retries,
    {"retries", counter, "emr_retries_total", "Upstream attempts beyond each call's first."});
  f(s.texts_per_call, {"texts_per_call", histogram, "emr_upstream_texts_per_call",
                       "Distinct texts in each upstream call."});
  f(s.batches_failed, {"batches_failed", counter, "emr_upstream_batches_failed_total",
                       "Upstream batch calls that failed after retries."});
  f(s.batches_split, {"batches_split", counter, "emr_upstream_batches_split_total",
                      "Rejected batch calls split to find the texts the provider refuses."});
  f(s.batches_requeued,
    {"batches_requeued", counter, "emr_upstream_batches_requeued_total",
     "Batch calls refused with 429 past the retries, queued again for their callers."});
  f(s.calls_spread, {"calls_spread", counter, "emr_upstream_calls_spread_total",
                     "Calls added to spread the first batch of a busy spell, for latency."});
  f(s.upstream_call_ms, {"upstream_call_ms"});
  f(s.upstream_us_per_token, {"upstream_us_per_token"});
  f(s.rejected_overload, {"rejected_overload", counter, "emr_overload_rejections_total",
                          "Chunks refused because the provider's queues were full."});
  f(s.chunks_expired, {"chunks_expired", counter, "emr_expired_chunks_total",
                       "Queued chunks dropped unsent because their callers stopped waiting."});
  f(s.chunks_refused_paused, {"chunks_refused_paused", counter, "emr_paused_refusals_total",
                              "Chunks refused because a rate-limit pause outlasts their wait."});
  f(s.workers, {"workers"});
  f(s.blocked_workers, {"blocked_workers"});
  f(s.mailbox_size, {"mailbox_size"});
  f(s.draining, {"draining"});
}

/// Upstream attempts since start, by outcome.
struct outcome_totals {
  std::uint64_t success = 0;
  std::uint64_t rate_limited = 0;
  std::uint64_t server_error = 0;
  std::uint64_t caller_error = 0;
};

template <class F> void describe(const outcome_totals& s, F&& f) {
  f(s.success, {"success"});
  f(s.rate_limited, {"rate_limited"});
  f(s.server_error, {"server_error"});
  f(s.caller_error, {"caller_error"});
}

/// One provider as the health actor sees it: its state, its rolling window and its totals.
struct provider_health_stats {
  std::string state;
  std::int64_t window_s = 0;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::uint64_t rate_limited = 0;
  double error_rate = 0;
  double availability = 1;
  double latency_p50_ms = 0;
  double latency_p95_ms = 0;
  double latency_p99_ms = 0;
  std::int64_t consecutive_failures = 0;
  std::int64_t sin_bin_entries = 0;
  std::int64_t sin_bin_remaining_ms = 0;
  std::int64_t paused_remaining_ms = 0;
  outcome_totals totals;
  histogram upstream_latency_seconds{histogram::latency_bounds()};
  /// Why its batcher stopped and was not restarted.
  std::optional<std::string> failure;
};

template <class F> void describe(const provider_health_stats& s, F&& f) {
  using enum metric_type;
  f(s.state, {"state"});
  f(s.window_s, {"window_s"});
  f(s.requests, {"requests"});
  f(s.errors, {"errors"});
  f(s.rate_limited, {"rate_limited"});
  f(s.error_rate, {"error_rate"});
  f(s.availability, {"availability"});
  f(s.latency_p50_ms, {"latency_p50_ms"});
  f(s.latency_p95_ms, {"latency_p95_ms"});
  f(s.latency_p99_ms, {"latency_p99_ms"});
  f(s.consecutive_failures, {"consecutive_failures"});
  f(s.sin_bin_entries,
    {"sin_bin_entries", counter, "emr_sin_bin_entries_total", "Times a provider was sin-binned."});
  f(s.sin_bin_remaining_ms, {"sin_bin_remaining_ms"});
  f(s.paused_remaining_ms, {"paused_remaining_ms"});
  f(s.totals, {"totals", counter, "emr_upstream_calls_total",
               "Upstream attempts by provider and outcome.", "outcome"});
  f(s.upstream_latency_seconds,
    {"upstream_latency_seconds", histogram, "emr_upstream_latency_seconds",
     "Latency of each upstream attempt."});
  f(s.failure, {"failure"});
}

/// The health actor's view of every provider.
struct health_stats {
  std::map<std::string, provider_health_stats> providers; ///< by provider name
};

} // namespace emr

// Drives concurrent embedding callers over loopback and checks every vector they get back against
// the fake provider's deterministic vectors. The demo, the benchmark and the integration tests all
// load emr (or the fake, for a baseline) through this one library, built from tools/load_client/:
// request.* (the endpoint and the bodies), closed_loop.cpp, burst.cpp, answer_check.* (the
// vectors) and summary.cpp.
#pragma once

// Expectations are stated in the fake's vectors; callers that check by hand need them too.
#include "tools/fake_vectors.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace emr::load {

/// Where the callers send their requests, and what every request carries.
struct endpoint {
  std::string base_url; ///< "http://127.0.0.1:PORT"; only loopback hosts are accepted
  std::string path = "/v1/embeddings";
  std::string bearer; ///< Authorization: Bearer <bearer>; empty = no header
  /// Added to every JSON body as key -> raw JSON text, e.g. {"provider", "\"voyage\""} for emr
  /// or {"model", "\"voyage-3.5\""} for a direct call to the fake.
  std::vector<std::pair<std::string, std::string>> extra_fields;
  /// Sent with every request besides Authorization, e.g. a gateway's routing headers.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// One HTTP request.
struct caller {
  // Initialized members let `caller{{"a", "b"}}` name only the texts without -Wextra warnings.
  std::vector<std::string> texts{}; ///< sent as "input": [..] (always an array)
  std::string input_type{};         ///< "" = field omitted
  std::string encoding_format{};    ///< "" = omitted; "float" or "base64"
  std::string request_id{};         ///< "" = no X-Request-Id header
  /// Non-empty: a call to the batch endpoint, with these as its sub-requests; the body is
  /// {"requests": [...]}, sub-request i has the id "i" and the endpoint's extra fields, and the
  /// four members above are unused.
  std::vector<caller> batch{};
};

/// How to check vectors: each must equal
/// emr::fake::fake_vector(model, upstream_input_type(input_type), text, dims) exactly, as float32.
struct expectation {
  std::string model;
  int dims = 0; ///< 0 = emr::fake::default_dims(model)
  /// The input type the provider saw, from the one the caller sent; e.g. Cohere maps "query" to
  /// "search_query" and ""/"document" to "search_document".
  std::function<std::string(const std::string&)> upstream_input_type = [](const std::string& t) {
    return t;
  };
  std::string provider{}; ///< the provider the answer must name; "" = any
  /// For callers routed to several providers ("providers" with policy "any" or "all"): one
  /// expectation per provider, each naming it. An "any" answer is checked against the one that
  /// served it; an "all" answer must hold each provider's vectors. The members above are unused.
  std::vector<expectation> providers{};
};

/// The outcome of one caller.
struct result {
  int status = 0; ///< 0 = transport failure
  double latency_ms = 0;
  /// 200, data.size() == texts.size(), data[i].index == i, and every vector verified (float
  /// arrays or base64 little-endian float32). Without an expectation only the shape is checked.
  bool vectors_ok = false;
  std::string error;       ///< why not ok: transport error, status + body excerpt, or the mismatch
  std::string retry_after; ///< Retry-After response header, if any
  std::string provider;    ///< "provider" field of a 200 answer, if any
  int retries = 0;         ///< 429s retried before this outcome (run_for with retry_429 only)
  /// A batch call's sub-request statuses, in order. Its vectors_ok says that the answer holds one
  /// result per sub-request and that every sub-request answered 200 holds exactly its vectors:
  /// a sub-request's failure is its own status, not a wrong vector.
  std::vector<int> batch_statuses{};
};

struct summary {
  std::size_t total = 0, ok = 0, wrong_vectors = 0, transport_errors = 0;
  std::map<int, std::size_t> status_counts;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0, wall_s = 0, throughput_rps = 0;
  std::size_t retries = 0; ///< sum of result::retries
};

/// All callers at once: every connection is opened first, then one thread writes every request
/// in a tight loop and collects the answers with epoll; vectors are verified only after the last
/// answer, so verification never slows the burst. Results are in caller order.
std::vector<result> fire_concurrent(const endpoint&, const std::vector<caller>&,
                                    const std::optional<expectation>&);

/// `workers` threads, each sending `per_worker` requests back to back on its own connection;
/// make(worker, i) builds each request. Results are worker-major: worker * per_worker + i.
std::vector<result> closed_loop(const endpoint&, std::size_t workers, std::size_t per_worker,
                                const std::function<caller(std::size_t, std::size_t)>& make,
                                const std::optional<expectation>&);

/// Like closed_loop, but each worker keeps sending until `duration` has passed. With retry_429 a
/// worker retries a 429 the way the official SDKs do: it honours Retry-After up to 60 s, else
/// waits 0.5 s * 2^n (at most 8 s) with jitter, at most `max_retries` times. A result then holds
/// the final outcome, its latency including the waits, and the number of retries. A wait that
/// would end after the run's end is not taken; the 429 stands.
std::vector<result> run_for(const endpoint&, std::size_t workers,
                            std::chrono::milliseconds duration,
                            const std::function<caller(std::size_t, std::size_t)>& make,
                            const std::optional<expectation>&, bool retry_429, int max_retries = 2);

/// Counts and latency percentiles (nearest rank, over every result) of one run.
summary summarize(const std::vector<result>&, double wall_s);

} // namespace emr::load

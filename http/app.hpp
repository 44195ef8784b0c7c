#pragma once
// What every HTTP route may use: the actor system, the store, the running providers, auth.

#include "actors/arrivals.hpp"
#include "actors/directory.hpp"
#include "http/caller_auth.hpp"
#include "http/caller_metrics.hpp"
#include "http/embed_request.hpp"
#include "http/key_quotas.hpp"
#include "http/key_usage_meter.hpp"
#include "http/stored_cache.hpp"

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>

namespace emr {

struct http_settings {
  std::string host = "127.0.0.1";
  int port = 3200;
  std::size_t threads = 1024; ///< each in-flight caller holds one while it waits for its batch
  /// Heap each HTTP thread writes as it starts (providers/fresh_pages.hpp, prewrite_heap).
  std::size_t prewritten_heap_bytes = 2 << 20;
  std::size_t max_connections = 4096;
  std::size_t max_body_bytes = 16 * 1024 * 1024;
  std::chrono::seconds read_timeout{10};
  std::chrono::seconds write_timeout{10};
  std::chrono::seconds keep_alive_timeout{5};
  /// a request head must arrive within this of its first byte, and its body within this of
  /// emr starting to read it, however steadily the bytes trickle in
  std::chrono::seconds request_read_timeout{30};
  std::chrono::milliseconds deadline{60'000}; ///< a caller's answer, success or error, by then
  std::size_t max_batch_requests = 256;
  request_limits limits;
};

struct app {
  caf::actor_system& system;
  store& db;
  provider_directory& directory;
  caller_auth& auth;
  arrivals& arriving;
  key_usage_meter& usage;
  key_quotas& quotas;
  std::shared_ptr<embedding_cache> cache;
  stored_cache* stored; ///< none: the cache keeps its vectors in memory only
  http_settings settings;
  std::string admin_secret;
  boost::json::object effective_config; ///< secrets redacted
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::atomic<std::uint64_t> requests_served{0};
  std::atomic<std::int64_t> in_flight_http{0};
  caller_metrics callers;
};

} // namespace emr

// The fake provider's HTTP side: the embeddings routes of every provider, each call passing
// its turn at the provider (request_queue.hpp), then auth, faults, validation, the poison marker
// and rate limits before its answer; and the control routes tests drive it with (/_faults, /_reset,
// /_stats, /_vectors).
#pragma once

#include "tools/fake_provider/call_stats.hpp"
#include "tools/fake_provider/faults.hpp"
#include "tools/fake_provider/rate_limiter.hpp"
#include "tools/fake_provider/request_queue.hpp"
#include "tools/fake_provider/stop_signal.hpp"
#include "tools/fake_provider/wire_format.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

namespace emr::fake {

/// The command line (main.cpp).
struct options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string port_file;
  int threads = 512;
  int latency_ms = 0;
  int latency_per_token_us = 0;
  int concurrency = 0; // calls served at once per API key; 0 = unlimited
  long rpm = 0;
  long tpm = 0;
  std::optional<int> retry_after; // unset: computed from the window; -1: no header
  std::string poison_marker = "__poison__";
  std::string api_key; // empty: any non-empty key is accepted
  std::uint64_t seed = 1;
};

// cpp-httplib as Debian builds it fixes the listen backlog at 5; re-listening raises it.
class http_server : public httplib::Server {
public:
  bool relisten(int backlog) { return ::listen(svr_sock_, backlog) == 0; }
};

class fake_provider {
public:
  explicit fake_provider(options opts)
      : opts_(std::move(opts)), faults_(opts_.seed), limiter_(opts_.rpm, opts_.tpm),
        queue_(opts_.concurrency) {}

  /// Adds every route to `svr`.
  void install(http_server& svr);
  /// Ends every sleep and every wait in the queue, so that calls in progress answer at once.
  void stop() {
    stop_.trigger();
    queue_.stop();
  }

private:
  /// How a route picks the provider: the shared /v1/embeddings path decides by model.
  enum class route { by_model, voyage, openai, cohere_v1, cohere_v2 };

  struct reply {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    httplib::Headers headers;
    bool ok_vectors = false;
  };

  void handle_embeddings(const httplib::Request& req, httplib::Response& res, route r);
  reply serve_embeddings(const wire_format& wire, const boost::json::value* body,
                         const boost::json::error_code& ec, embed_job& job, const std::string& key);
  std::optional<reply> check_rate_limit(const wire_format& wire, const embed_job& job,
                                        const std::string& key);

  void handle_faults(const httplib::Request& req, httplib::Response& res);
  void handle_reset(httplib::Response& res);
  void handle_stats(httplib::Response& res);
  void handle_vectors(const httplib::Request& req, httplib::Response& res);

  static const wire_format& wire_for(route r, const boost::json::value* body);
  static reply error_reply(const wire_format& wire, const api_error& e);

  options opts_;
  fault_injector faults_;
  rate_limiter limiter_;
  request_queue queue_;
  call_stats stats_;
  stop_signal stop_;
};

} // namespace emr::fake

#include "http/server.hpp"

#include "actors/arrivals.hpp"

#include "http/caller_text.hpp"
#include "http/connection_gate.hpp"
#include "http/connection_stream.hpp"
#include "http/deferred_answer.hpp"
#include "http/exchange.hpp"
#include "http/refusals.hpp"
#include "http/route_table.hpp"
#include "http/routes.hpp"
#include "http/warm_thread_pool.hpp"
#include "providers/fresh_pages.hpp"

#include <caf/actor_system.hpp>
#include <caf/logger.hpp>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace emr {

namespace {

// HTTP threads that run at once (http/warm_thread_pool.hpp): one per core, and two more to keep
// the cores busy across a page fault or a short lock wait. Threads that wait are not counted.
std::size_t threads_at_once(std::size_t threads) {
  return std::min<std::size_t>(threads, std::max(1u, std::thread::hardware_concurrency()) + 2);
}

// Set by the logger when an answer says Connection: close (a refusal that left the body unread,
// say): the connection cannot carry another request.
thread_local bool answer_closes_connection = false;
// Set by the logger for an answer below 400: a route answered, and httplib calls routes only once
// it has read the request whole.
thread_local bool request_read_whole = false;

// Whether the client has sent nothing more: the connection can then close at once, without
// dropping what is still on its way (a close with unread bytes resets the connection).
bool nothing_more_sent(int fd) {
  char byte;
  auto n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

// Each HTTP thread spawns request actors, and CAF (0.17) keeps, for its logging, a map from
// thread to actor guarded by a spinlock, which a thread's first spawn adds it to. A burst on a
// fresh server then had hundreds of threads spinning on that lock while the one adding itself
// waited for the allocator (its first malloc) behind threads the spinners kept off the two
// cores: the whole burst, CAF's own threads included, stalled for seconds. Each HTTP thread is
// added once, as it starts, and never again.
void known_to_caf(caf::actor_system& system) {
  system.logger().thread_local_aid(0);
}

// httplib, with one difference: a connection holds an HTTP thread only while a request of its
// is being read and answered. Between requests, and while a request head arrives, the connection
// gate holds it, so idle and slow clients cannot take every thread.
class gated_server : public httplib::Server, private connection_owner {
public:
  gated_server(const http_settings& settings, arrivals& arriving,
               std::function<void()> thread_start)
      : arriving_(arriving),
        workers_(settings.threads, threads_at_once(settings.threads), std::move(thread_start)),
        gate_(waiting_limits{settings.keep_alive_timeout, settings.request_read_timeout},
              std::max(settings.max_connections, settings.threads),
              [this](waiting_connections::connection c) {
                // Counted from here: a burst's requests wait for an HTTP thread too, and a batch
                // sent meanwhile would go without them.
                workers_.enqueue([this, c = std::move(c), waiting = arriving_.arrive()]() mutable {
                  serve(std::move(c), std::move(waiting));
                });
              }),
        request_read_timeout_(settings.request_read_timeout) {
    new_task_queue = [this] { return new accept_queue(*this); };
  }

  // Debian's build fixes the listen backlog at 5; a burst of connects would be dropped.
  bool relisten(int backlog) { return ::listen(svr_sock_, backlog) == 0; }

private:
  // httplib's accept loop hands each new socket to the task queue, as a job that calls
  // process_and_close_socket: running that job at once passes the socket to the gate.
  class accept_queue : public httplib::TaskQueue {
  public:
    explicit accept_queue(gated_server& server) : server_(server) {}
    void enqueue(std::function<void()> job) override { job(); }
    void shutdown() override {
      server_.gate_.stop();
      // Answers written later may still need an HTTP thread (a client with a full socket).
      {
        std::unique_lock lock{server_.deferred_mutex_};
        server_.deferred_done_.wait(lock, [this] { return server_.deferred_ == 0; });
      }
      server_.workers_.shutdown();
    }

  private:
    gated_server& server_;
  };

  bool process_and_close_socket(int sock) override {
    gate_.admit(sock);
    return true;
  }

  // Answers the connection's requests while they are already here, then gives it back.
  void serve(waiting_connections::connection c, arrivals::in_transit waiting) {
    using std::chrono::seconds;
    for (;;) {
      connection_stream stream{c.fd, std::move(c.received), seconds{read_timeout_sec_},
                               seconds{write_timeout_sec_}};
      stream.read_until(connection_stream::clock::now() + request_read_timeout_);
      answer_closes_connection = false;
      request_read_whole = false;
      arrivals::entry arriving{arriving_};
      waiting.reset(); // the thread's own count has taken over
      bool closed = false;
      deferral_offer offer{c.fd, this, nullptr, [this, &stream] {
                             // Counted before the drain is looked at, as the drain stops before
                             // it looks at the count: either this answer sees the drain, or the
                             // drain waits for this answer and the HTTP threads it may need.
                             deferred_.fetch_add(1);
                             if (gate_.stopping()) {
                               answer_settled();
                               return false;
                             }
                             stream.detach();
                             return true;
                           }};
      current_deferral_offer() = &offer;
      bool answered = process_request(stream, gate_.stopping(), closed, nullptr);
      current_deferral_offer() = nullptr;
      if (offer.taken) {
        // A route answers it later: the connection is the answer's until it is written.
        bool keep = answered && !closed && !answer_closes_connection && !stream.deadline_passed() &&
                    !gate_.stopping();
        return offer.taken->request_done(stream.take_unread(), answered, keep);
      }
      // Even a request httplib failed to read may have an answer held (a 400, say).
      if (!stream.flush())
        return gate_.close(c.fd);
      c.received = stream.take_unread();
      if (!answered || closed || answer_closes_connection || stream.deadline_passed() ||
          gate_.stopping())
        return close(c.fd, answered && request_read_whole, c.received);
      if (!request_head_end(c.received))
        return gate_.give_back(std::move(c));
    }
  }

  // The common case, a client that asked to close after one request: closed now, it costs the
  // gate no wake-up to see the client's end of stream.
  void close(int fd, bool read_whole, const std::string& unread) {
    if (read_whole && unread.empty() && nothing_more_sent(fd))
      return gate_.close(fd);
    gate_.close_after_answer(fd);
  }

  std::string keep_alive() const override {
    return "timeout=" + std::to_string(keep_alive_timeout_sec_) +
           ", max=" + std::to_string(keep_alive_max_count_);
  }

  void carry_on(int fd, answered how) override {
    if (how.failed)
      gate_.close(fd);
    else if (!how.keep)
      close(fd, how.read_whole, how.unread);
    else if (!request_head_end(how.unread))
      gate_.give_back({fd, std::move(how.unread)});
    else
      // The client sent its next request meanwhile: served now, as the gate would hand it on.
      workers_.enqueue(
          [this, c = waiting_connections::connection{fd, std::move(how.unread)},
           waiting = arriving_.arrive()]() mutable { serve(std::move(c), std::move(waiting)); });
    answer_settled();
  }

  // One answer taken by a route is no longer owed.
  void answer_settled() {
    // The lock orders the last decrement before a draining thread's wait, never between its
    // test and its sleep.
    if (deferred_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock{deferred_mutex_};
      deferred_done_.notify_all();
    }
  }
  void run_blocking(std::function<void()> job) override { workers_.enqueue(std::move(job)); }
  bool stopping() const override { return gate_.stopping(); }
  std::chrono::steady_clock::duration write_timeout() const override {
    return std::chrono::seconds{write_timeout_sec_};
  }

  arrivals& arriving_;
  warm_thread_pool workers_;
  connection_gate gate_;
  std::chrono::seconds request_read_timeout_;
  std::mutex deferred_mutex_;
  std::condition_variable deferred_done_;
  std::atomic<std::size_t> deferred_{0}; ///< answers taken by routes, not yet written
};

} // namespace

struct http_server::impl {
  app& a;
  gated_server server;
  route_table routes{server};
  admin_changes changes;
  explicit impl(app& a)
      : a(a), server(a.settings, a.arriving, [&a] {
          known_to_caf(a.system);
          prewrite_heap(a.settings.prewritten_heap_bytes);
        }) {}
};

http_server::http_server(app& a) : impl_(std::make_unique<impl>(a)) {
  auto& s = impl_->server;
  auto& settings = a.settings;
  // The gate closes idle connections; httplib only names these in each answer's Keep-Alive
  // header, so clients reuse a connection for as long as emr keeps it.
  s.set_keep_alive_max_count(10'000);
  s.set_keep_alive_timeout(static_cast<time_t>(settings.keep_alive_timeout.count()));
  s.set_read_timeout(static_cast<time_t>(settings.read_timeout.count()), 0);
  s.set_write_timeout(static_cast<time_t>(settings.write_timeout.count()), 0);
  s.set_payload_max_length(settings.max_body_bytes);
  s.set_tcp_nodelay(true);
  s.set_pre_routing_handler([routes = &impl_->routes, max_body = settings.max_body_bytes](
                                const httplib::Request& req, httplib::Response& res) {
    // The request object is httplib's own, not const; only the reference it hands over is.
    auto& request = const_cast<httplib::Request&>(req);
    // Answers go uncompressed. httplib would compress each JSON answer a client accepts
    // compressed, with brotli at its slowest setting where `br` is accepted (as Node's fetch and
    // Python clients with brotli installed do): 20-30 ms of CPU for one text's answer, seconds for
    // a large batch's, to spare bytes on the local links emr serves.
    request.headers.erase("Accept-Encoding");
    // And whole: httplib would cut any answer it writes into the ranges a client asks for, each
    // range a copy, so that a header of a few kilobytes asking for the whole answer thousands of
    // times over would multiply it by as much. A server may ignore Range (RFC 9110, 14.2).
    request.ranges.clear();
    request.headers.erase("Range");
    // Only callers' embedding requests bring batches company.
    if (!req.path.starts_with("/v1/embeddings"))
      arrivals::leave_current();
    return refuse_before_body(req, res, *routes, max_body)
               ? httplib::Server::HandlerResponse::Handled
               : httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_logger([](const httplib::Request&, const httplib::Response& res) {
    if (res.get_header_value("Connection") == "close")
      answer_closes_connection = true;
    request_read_whole = res.status < 400;
  });
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res,
                             std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("unhandled error on {} {}: {}", json_quoted(req.method), json_quoted(req.path),
                  what);
    // The route may have thrown before it read the body, which would then pass for the
    // connection's next request.
    res.set_header("Connection", "close");
    send_error(res,
               api_error{500, "internal_error", "internal error; see the server log", {}, {}, -1});
  });
  s.set_error_handler(
      [routes = &impl_->routes](const httplib::Request& req, httplib::Response& res) {
        // httplib refuses a Range it cannot parse (416) before any route or the pre-routing
        // handler runs, with the ranges before the bad one kept: the refusal goes whole too.
        const_cast<httplib::Request&>(req).ranges.clear();
        // Routes answer their own errors with bodies; this covers what httplib rejects itself.
        if (res.body.empty())
          answer_refusal(req, res, *routes);
      });
  install_embedding_routes(impl_->routes, a);
  install_admin_routes(impl_->routes, a, impl_->changes);
  install_public_routes(impl_->routes, a);
  install_metrics_route(impl_->routes, a);
}

http_server::~http_server() = default;

int http_server::bind() {
  auto& settings = impl_->a.settings;
  int port = settings.port == 0
                 ? impl_->server.bind_to_any_port(settings.host)
                 : (impl_->server.bind_to_port(settings.host, settings.port) ? settings.port : -1);
  if (port < 0)
    return -1;
  if (!impl_->server.relisten(4096))
    spdlog::warn("could not raise the listen backlog; bursts of connections may be refused");
  return port;
}

void http_server::run() {
  impl_->server.listen_after_bind();
}

void http_server::stop() {
  impl_->server.stop();
}

} // namespace emr

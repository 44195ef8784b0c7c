#include "http/server.hpp"

#include "http/exchange.hpp"
#include "http/refusals.hpp"
#include "http/route_table.hpp"
#include "http/routes.hpp"
#include "http/warm_thread_pool.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <atomic>

namespace emr {

namespace {

// Debian's build fixes the listen backlog at 5; a burst of connects would be dropped.
class listening_server : public httplib::Server {
public:
  bool relisten(int backlog) { return ::listen(svr_sock_, backlog) == 0; }
};

// Set while a connection beyond the cap is being answered: routing refuses it at once.
thread_local bool over_capacity = false;

// httplib hands every accepted connection to the task queue, which cannot refuse one (the job
// owns the socket). Connections beyond the cap go to a small pool that answers 503 quickly, so
// memory and threads stay bounded however many clients connect.
class bounded_task_queue : public httplib::TaskQueue {
public:
  bounded_task_queue(std::size_t threads, std::size_t max_connections)
    : workers_(threads), refusers_(2), max_connections_(max_connections) {}

  void enqueue(std::function<void()> job) override {
    if (active_.fetch_add(1) >= max_connections_) {
      refusers_.enqueue([this, job = std::move(job)] {
        over_capacity = true;
        job();
        over_capacity = false;
        --active_;
      });
      return;
    }
    workers_.enqueue([this, job = std::move(job)] {
      job();
      --active_;
    });
  }

  void shutdown() override {
    workers_.shutdown();
    refusers_.shutdown();
  }

private:
  warm_thread_pool workers_;
  httplib::ThreadPool refusers_;
  std::size_t max_connections_;
  std::atomic<std::size_t> active_{0};
};

} // namespace

struct http_server::impl {
  app& a;
  listening_server server;
  route_table routes{server};
  explicit impl(app& a) : a(a) {}
};

http_server::http_server(app& a) : impl_(std::make_unique<impl>(a)) {
  auto& s = impl_->server;
  auto& settings = a.settings;
  auto threads = settings.threads;
  auto max_connections = std::max(settings.max_connections, settings.threads);
  s.new_task_queue = [threads, max_connections] { return new bounded_task_queue(threads, max_connections); };
  s.set_keep_alive_max_count(10'000);
  s.set_keep_alive_timeout(static_cast<time_t>(settings.keep_alive_timeout.count()));
  s.set_read_timeout(static_cast<time_t>(settings.read_timeout.count()), 0);
  s.set_write_timeout(static_cast<time_t>(settings.write_timeout.count()), 0);
  s.set_payload_max_length(settings.max_body_bytes);
  s.set_tcp_nodelay(true);
  s.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (over_capacity) {
      res.set_header("Connection", "close");
      send_error(res, api_error{503, "server_busy", "too many open connections; retry shortly", {}, {}, 1000});
      return httplib::Server::HandlerResponse::Handled;
    }
    if (auto refusal = refuse_framing(req)) {
      // The body stays unread, so the connection cannot carry another request.
      res.set_header("Connection", "close");
      send_error(res, *refusal);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("unhandled error on {} {}: {}", req.method, req.path, what);
    send_error(res, api_error{500, "internal_error", "internal error; see the server log", {}, {}, -1});
  });
  s.set_error_handler([routes = &impl_->routes](const httplib::Request& req, httplib::Response& res) {
    // Routes answer their own errors with bodies; this covers what httplib rejects itself.
    if (res.body.empty())
      answer_refusal(req, res, *routes);
  });
  install_embedding_routes(impl_->routes, a);
  install_admin_routes(impl_->routes, a);
  install_public_routes(impl_->routes, a);
  install_metrics_route(impl_->routes, a);
}

http_server::~http_server() = default;

int http_server::bind() {
  auto& settings = impl_->a.settings;
  int port = settings.port == 0 ? impl_->server.bind_to_any_port(settings.host)
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

// fire_concurrent: one thread drives every connection with non-blocking sockets and epoll, so the
// burst's requests leave within a few milliseconds of each other. HTTP/1.1 is written and read by
// Boost.Beast's serializer and parser; the sockets, the connect retries and the timing are ours,
// since a burst needs every request written in one tight loop, which no client library offers.

#include "tools/load_client.hpp"

#include "tools/load_client/answer_check.hpp"
#include "tools/load_client/request.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <sstream>
#include <thread>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace emr::load {

namespace {

namespace http = boost::beast::http;
using steady = std::chrono::steady_clock;

constexpr int max_connect_attempts = 6;
constexpr auto first_connect_backoff = std::chrono::milliseconds(20);
constexpr auto burst_timeout = std::chrono::seconds(120);
constexpr std::size_t max_verifier_threads = 4;

// Enough descriptors for one socket per caller, plus some for everything else.
void raise_fd_limit(std::size_t sockets) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return;
  const rlim_t needed = static_cast<rlim_t>(sockets) + 64;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < needed) {
    lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? needed : lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim); // if this fails, the sockets past the limit report EMFILE
  }
}

std::string host_header(const emr::endpoint& target) {
  const bool v6 = target.host.find(':') != std::string::npos;
  return (v6 ? "[" + target.host + "]" : target.host) +
         (target.port == 80 ? "" : ":" + std::to_string(target.port));
}

// The whole request as it goes on the wire; the connection closes after one answer.
std::string serialize_request(const prepared_endpoint& p, const caller& c) {
  http::request<http::string_body> req{http::verb::post, p.path, 11};
  req.set(http::field::host, host_header(p.target));
  req.set(http::field::content_type, "application/json");
  req.set(http::field::connection, "close");
  for (const auto& [name, value] : p.headers)
    req.insert(name, value);
  if (!c.request_id.empty())
    req.insert("X-Request-Id", c.request_id);
  req.body() = request_body(p, c);
  req.prepare_payload();
  std::ostringstream out;
  out << req;
  return std::move(out).str();
}

using response_parser = http::response_parser<http::string_body>;

struct burst_call {
  enum class phase { waiting_to_connect, connecting, connected, exchanging, done };

  std::string request; // the whole serialized request
  int fd = -1;
  phase state = phase::waiting_to_connect;
  int attempts = 0;
  std::size_t address = 0; // which resolved address the next attempt uses
  steady::time_point retry_at{}, connect_started{};
  std::string last_connect_error;

  bool sent = false; // the first byte went out at sent_at
  std::size_t written = 0;
  steady::time_point sent_at{}, done_at{};

  std::string in;                        // response bytes the parser has not taken yet
  std::optional<response_parser> parser; // the answer being read, from the first byte sent

  // The outcome: an error (transport failure) or status, headers and body.
  std::string error;
  int status = 0;
  std::string retry_after, body;
};

// A parser for the next answer on a call; answers may be far larger than Beast's default limit.
void start_answer(burst_call& c) {
  c.parser.emplace();
  c.parser->eager(true);
  c.parser->body_limit(boost::none);
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// Runs the calling thread under SCHED_FIFO while it lives, if the process may; else no-op.
class realtime_section {
public:
  realtime_section() {
    if (pthread_getschedparam(pthread_self(), &old_policy_, &old_param_) != 0)
      return;
    sched_param rt{};
    rt.sched_priority = 1;
    active_ = pthread_setschedparam(pthread_self(), SCHED_FIFO, &rt) == 0;
  }
  ~realtime_section() {
    if (active_)
      pthread_setschedparam(pthread_self(), old_policy_, &old_param_);
  }
  realtime_section(const realtime_section&) = delete;
  realtime_section& operator=(const realtime_section&) = delete;

private:
  int old_policy_ = SCHED_OTHER;
  sched_param old_param_{};
  bool active_ = false;
};

class burst_driver {
public:
  burst_driver(const emr::endpoint& target, std::vector<burst_call>& calls)
      : calls_(calls), deadline_(steady::now() + burst_timeout) {
    resolve(target);
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0)
      fail_all("epoll_create1: " + errno_text(errno));
  }
  ~burst_driver() {
    for (auto& c : calls_)
      close_socket(c);
    if (epoll_ >= 0)
      ::close(epoll_);
  }
  burst_driver(const burst_driver&) = delete;
  burst_driver& operator=(const burst_driver&) = delete;

  void run() {
    if (epoll_ < 0 || addresses_.empty())
      return;
    connect_all();
    send_all();
    receive_all();
  }

private:
  struct address {
    sockaddr_storage addr{};
    socklen_t len = 0;
  };

  void resolve(const emr::endpoint& target) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(target.port);
    if (const int rc = getaddrinfo(target.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
      fail_all("cannot resolve " + target.host + ": " + gai_strerror(rc));
      return;
    }
    for (auto* a = found; a; a = a->ai_next) {
      address addr;
      std::memcpy(&addr.addr, a->ai_addr, a->ai_addrlen);
      addr.len = static_cast<socklen_t>(a->ai_addrlen);
      addresses_.push_back(addr);
    }
    freeaddrinfo(found);
  }

  void fail_all(const std::string& why) {
    for (auto& c : calls_)
      if (c.state != burst_call::phase::done)
        finish_with_error(c, why);
  }

  void close_socket(burst_call& c) {
    if (c.fd >= 0) {
      ::close(c.fd); // also leaves the epoll set
      c.fd = -1;
    }
  }

  void finish(burst_call& c) {
    c.done_at = steady::now();
    c.state = burst_call::phase::done;
    close_socket(c);
    ++finished_;
  }

  void finish_with_error(burst_call& c, std::string why) {
    c.error = std::move(why);
    finish(c);
  }

  void watch(burst_call& c, std::uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = static_cast<std::uint64_t>(&c - calls_.data());
    if (epoll_ctl(epoll_, op, c.fd, &ev) != 0)
      finish_with_error(c, "epoll_ctl: " + errno_text(errno));
  }

  // A failed connect attempt: try again after a short, growing pause, or give up.
  void connect_failed(burst_call& c, const std::string& why) {
    close_socket(c);
    c.last_connect_error = why;
    ++c.address;
    if (c.attempts >= max_connect_attempts) {
      finish_with_error(c,
                        "connect failed after " + std::to_string(c.attempts) + " attempts: " + why);
      return;
    }
    c.state = burst_call::phase::waiting_to_connect;
    c.retry_at = steady::now() + first_connect_backoff * (1 << (c.attempts - 1));
  }

  void start_connect(burst_call& c) {
    ++c.attempts;
    const address& a = addresses_[c.address % addresses_.size()];
    c.fd = ::socket(a.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      const int err = errno;
      if (err == EMFILE || err == ENFILE) // more attempts will not free descriptors
        finish_with_error(c, "socket: " + errno_text(err));
      else
        connect_failed(c, "socket: " + errno_text(err));
      return;
    }
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c.connect_started = steady::now();
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len) == 0) {
      connected(c);
      return;
    }
    if (errno != EINPROGRESS) {
      connect_failed(c, errno_text(errno));
      return;
    }
    c.state = burst_call::phase::connecting;
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
  }

  void connected(burst_call& c) {
    const bool registered = c.state == burst_call::phase::connecting;
    c.state = burst_call::phase::connected;
    // From now on only the server's answer (or its hang-up) is of interest.
    watch(c, EPOLLIN | EPOLLRDHUP, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
  }

  int wait_ms(steady::time_point until) const {
    const auto now = steady::now();
    if (until <= now)
      return 0;
    return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(until - now).count());
  }

  // Opens every connection, retrying refused or failed ones, and returns once each is open or
  // has failed for good.
  void connect_all() {
    for (auto& c : calls_)
      if (c.state == burst_call::phase::waiting_to_connect)
        start_connect(c);
    std::vector<epoll_event> events(std::min<std::size_t>(calls_.size(), 1024));
    for (;;) {
      const auto now = steady::now();
      std::size_t pending = 0;
      auto next_wake = deadline_;
      for (auto& c : calls_) {
        if (c.state == burst_call::phase::waiting_to_connect) {
          if (now >= deadline_) {
            finish_with_error(c, "timed out waiting to connect: " + c.last_connect_error);
            continue;
          }
          if (c.retry_at <= now)
            start_connect(c);
          else
            next_wake = std::min(next_wake, c.retry_at);
        }
        if (c.state == burst_call::phase::connecting) {
          const auto give_up = c.connect_started + std::chrono::seconds(connect_timeout_s);
          if (now >= deadline_) {
            finish_with_error(c, "timed out connecting");
            continue;
          }
          if (now >= give_up) {
            connect_failed(c, "connect timed out");
            if (c.state == burst_call::phase::waiting_to_connect)
              next_wake = std::min(next_wake, c.retry_at);
          } else {
            next_wake = std::min(next_wake, give_up);
          }
        }
        if (c.state == burst_call::phase::waiting_to_connect ||
            c.state == burst_call::phase::connecting)
          ++pending;
      }
      if (pending == 0)
        return;
      const int n =
          epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), wait_ms(next_wake));
      if (n < 0 && errno != EINTR) {
        fail_all("epoll_wait: " + errno_text(errno));
        return;
      }
      for (int k = 0; k < n; ++k) {
        burst_call& c = calls_[events[k].data.u64];
        if (c.state == burst_call::phase::connecting) {
          int err = 0;
          socklen_t len = sizeof err;
          if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
          if (err == 0)
            connected(c);
          else
            connect_failed(c, errno_text(err));
        } else if (c.state == burst_call::phase::connected) {
          // The server hung up (or spoke) before the burst: the request cannot go out.
          finish_with_error(c, "connection closed by the server before the request was sent");
        }
      }
    }
  }

  // Writes as much of the request as the socket takes; false once the call has failed.
  bool write_some(burst_call& c) {
    while (c.written < c.request.size()) {
      const ssize_t n =
          ::send(c.fd, c.request.data() + c.written, c.request.size() - c.written, MSG_NOSIGNAL);
      if (n > 0) {
        c.written += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return true;
      finish_with_error(c, "send failed: " + errno_text(n < 0 ? errno : EPIPE));
      return false;
    }
    return true;
  }

  // The burst: every request goes out in one tight loop, nothing else in between. Each send
  // wakes a server thread, and on a small machine those would preempt this loop and smear the
  // burst; a real-time priority for these few milliseconds keeps it tight where that is allowed.
  void send_all() {
    for (auto& c : calls_)
      if (c.state == burst_call::phase::connected)
        start_answer(c);
    const realtime_section rt;
    for (auto& c : calls_) {
      if (c.state != burst_call::phase::connected)
        continue;
      c.sent_at = steady::now();
      c.sent = true;
      c.state = burst_call::phase::exchanging;
      write_some(c);
    }
    // Requests too large for one write finish as their sockets drain.
    for (auto& c : calls_)
      if (c.state == burst_call::phase::exchanging && c.written < c.request.size())
        watch(c, EPOLLIN | EPOLLRDHUP | EPOLLOUT, EPOLL_CTL_MOD);
  }

  // The answer is complete: keep what the caller's result needs.
  void answered(burst_call& c) {
    auto& answer = c.parser->get();
    c.status = static_cast<int>(answer.result_int());
    c.retry_after = std::string(answer[http::field::retry_after]);
    c.body = std::move(answer.body());
    c.parser.reset();
    std::string().swap(c.in);
    finish(c);
  }

  // Feeds the bytes that have arrived to the parser; false once the call has finished, with its
  // answer or with why the bytes are not one. Interim 1xx answers are skipped.
  bool parse_some(burst_call& c) {
    while (!c.in.empty()) {
      boost::beast::error_code ec;
      const std::size_t used = c.parser->put(boost::asio::buffer(c.in), ec);
      c.in.erase(0, used);
      if (ec == http::error::need_more)
        return true;
      if (ec) {
        finish_with_error(c, "malformed response: " + ec.message());
        return false;
      }
      if (!c.parser->is_done())
        continue;
      if (c.parser->get().result_int() / 100 != 1) {
        answered(c);
        return false;
      }
      start_answer(c);
    }
    return true;
  }

  // Reads what has arrived; finishes the call once its answer is complete or broken.
  void read_some(burst_call& c) {
    char buf[64 * 1024];
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      if (n < 0) {
        finish_with_error(c, "receive failed: " + errno_text(errno));
        return;
      }
      if (n == 0) {
        at_eof(c);
        return;
      }
      c.in.append(buf, static_cast<std::size_t>(n));
      if (!parse_some(c))
        return;
    }
  }

  // The server closed the connection: an answer read to its end, or one cut short.
  void at_eof(burst_call& c) {
    if (!c.parser->is_header_done()) {
      finish_with_error(c, c.in.empty() && !c.parser->got_some()
                               ? "connection closed without an answer"
                               : "connection closed inside the response headers");
      return;
    }
    boost::beast::error_code ec;
    c.parser->put_eof(ec);
    if (!ec) {
      answered(c);
      return;
    }
    if (const auto length = c.parser->content_length())
      finish_with_error(c, "connection closed after " +
                               std::to_string(c.parser->get().body().size()) + " of " +
                               std::to_string(*length) + " body bytes");
    else
      finish_with_error(c, "connection closed inside the response body: " + ec.message());
  }

  void receive_all() {
    std::vector<epoll_event> events(std::min<std::size_t>(calls_.size(), 1024));
    while (finished_ < calls_.size()) {
      const int timeout = wait_ms(deadline_);
      if (timeout == 0)
        break;
      const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout);
      if (n < 0 && errno != EINTR) {
        fail_all("epoll_wait: " + errno_text(errno));
        return;
      }
      for (int k = 0; k < n; ++k) {
        burst_call& c = calls_[events[k].data.u64];
        if (c.state != burst_call::phase::exchanging)
          continue;
        if ((events[k].events & EPOLLOUT) && c.written < c.request.size()) {
          if (!write_some(c))
            continue;
          if (c.written == c.request.size())
            watch(c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
          if (c.state != burst_call::phase::exchanging)
            continue;
        }
        if (events[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
          read_some(c);
      }
    }
    for (auto& c : calls_)
      if (c.state != burst_call::phase::done)
        finish_with_error(c, "no complete answer within " + std::to_string(burst_timeout.count()) +
                                 " s");
  }

  std::vector<burst_call>& calls_;
  const steady::time_point deadline_;
  std::vector<address> addresses_;
  int epoll_ = -1;
  std::size_t finished_ = 0;
};

} // namespace

std::vector<result> fire_concurrent(const endpoint& e, const std::vector<caller>& callers,
                                    const std::optional<expectation>& expect) {
  const prepared_endpoint p = prepare(e);
  raise_fd_limit(callers.size());
  std::vector<burst_call> calls(callers.size());
  for (std::size_t i = 0; i < callers.size(); ++i)
    calls[i].request = serialize_request(p, callers[i]);
  if (!calls.empty())
    burst_driver(p.target, calls).run();

  std::vector<result> results(callers.size());
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const burst_call& c = calls[i];
    result& r = results[i];
    r.latency_ms =
        c.sent ? std::chrono::duration<double, std::milli>(c.done_at - c.sent_at).count() : 0;
    if (!c.error.empty()) {
      r.error = "transport error: " + c.error;
      continue;
    }
    r.status = c.status;
    r.retry_after = c.retry_after;
    if (r.status != 200)
      r.error = std::to_string(r.status) + ": " + excerpt(c.body);
  }

  // Every answer is in: only now may verification take the CPU.
  std::vector<std::size_t> to_check;
  for (std::size_t i = 0; i < calls.size(); ++i)
    if (calls[i].error.empty() && calls[i].status == 200)
      to_check.push_back(i);
  std::atomic<std::size_t> next{0};
  const auto verify = [&] {
    for (std::size_t k; (k = next.fetch_add(1)) < to_check.size();) {
      const std::size_t i = to_check[k];
      result& r = results[i];
      r.error = check_answer(callers[i], calls[i].body, expect, r);
      r.vectors_ok = r.error.empty();
      std::string().swap(calls[i].body);
    }
  };
  const std::size_t verifiers =
      std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, max_verifier_threads);
  {
    std::vector<std::jthread> threads;
    for (std::size_t t = 1; t < std::min(verifiers, to_check.size()); ++t)
      threads.emplace_back(verify);
    verify();
  }
  return results;
}

} // namespace emr::load

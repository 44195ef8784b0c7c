#include "http/connection_gate.hpp"

#include "http/api_error.hpp"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <stdexcept>
#include <vector>

namespace emr {

namespace {

using clock = std::chrono::steady_clock;

// How often timeouts are looked for: how late past its timeout a connection may close.
constexpr std::chrono::milliseconds sweep_interval{100};

// Connections over the cap wait for their request head to be answered 503, so that a client
// reads why rather than a reset; this many at most (a sixteenth of the cap, at least 16). Past
// them a new connection is closed at once: a flood of connections that never finish a head
// would otherwise hold a descriptor each for the head timeout.
std::size_t refusal_room(std::size_t max_connections) {
  return std::max<std::size_t>(16, max_connections / 16);
}

// Descriptors besides the callers' connections: upstream connections, the store, logs.
constexpr rlim_t other_descriptors = 256;

// Raises the process's limit on open descriptors as far as the cap and its refusals need, up to
// the hard limit (commonly 1,024 soft, far more hard), and says so when even that is short.
void make_room_for(std::size_t connections) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return;
  auto wanted = static_cast<rlim_t>(connections) + other_descriptors;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
    limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      limit.rlim_cur < wanted)
    spdlog::warn("the open file limit ({}) is below server.max_connections and its margin ({}); "
                 "raise it (ulimit -n) or lower max_connections",
                 limit.rlim_cur, wanted);
}

// The gate answers before any httplib request exists, so it writes the response itself, in the
// same JSON shape as every other error.
std::string closing_answer(const api_error& error) {
  auto body = render_error(error);
  std::string out = "HTTP/1.1 " + std::to_string(error.status) + " " + reason_phrase(error.status) +
                    "\r\nContent-Type: application/json\r\nConnection: close\r\n";
  if (auto wait = retry_after(error))
    out += "Retry-After: " + std::to_string(*wait) + "\r\n";
  return out + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

} // namespace

connection_gate::connection_gate(waiting_limits limits, std::size_t max_connections,
                                 ready_handler ready)
    : waiting_(limits), max_connections_(max_connections),
      most_open_(max_connections + refusal_room(max_connections)), ready_(std::move(ready)),
      epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (epoll_fd_ < 0 || wake_fd_ < 0)
    throw std::runtime_error("cannot create the connection gate's epoll set");
  make_room_for(most_open_);
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.fd = wake_fd_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake);
  thread_ = std::thread([this] { run(); });
}

connection_gate::~connection_gate() {
  stop();
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

void connection_gate::admit(int fd) {
  std::lock_guard lock(mutex_);
  ++open_;
  if (stopping_) {
    close(fd);
    return;
  }
  bool refuse = false;
  if (open_ > max_connections_) {
    if (auto idle = waiting_.take_oldest_idle()) {
      // In its place: one beyond the cap (its first byte not read yet) makes room beyond it.
      refuse = idle->refuse;
      close(idle->fd);
    } else if (open_ > most_open_) {
      close(fd);
      return;
    } else {
      refuse = true;
    }
  }
  waiting_.add({fd, {}, refuse}, clock::now());
  watch(fd, EPOLL_CTL_ADD);
}

void connection_gate::give_back(waiting_connections::connection c) {
  std::lock_guard lock(mutex_);
  if (stopping_) {
    close(c.fd);
    return;
  }
  int fd = c.fd;
  waiting_.add(std::move(c), clock::now());
  watch(fd, EPOLL_CTL_MOD);
}

void connection_gate::close_after_answer(int fd) {
  ::shutdown(fd, SHUT_WR);
  std::lock_guard lock(mutex_);
  // Draining waits for the connections held: one that lingers would hold the exit.
  if (stopping_) {
    close(fd);
    return;
  }
  waiting_.add({fd, {}, false, true}, clock::now());
  watch(fd, EPOLL_CTL_MOD);
}

void connection_gate::close(int fd) {
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  --open_;
}

void connection_gate::stop() {
  if (stopping_.exchange(true))
    return;
  std::uint64_t one = 1;
  [[maybe_unused]] auto ignored = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
}

void connection_gate::watch(int fd, int op) {
  // One-shot: after an event the gate alone decides when to listen again, so an HTTP thread
  // serving the connection never races it for the bytes.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
  ev.data.fd = fd;
  ::epoll_ctl(epoll_fd_, op, fd, &ev);
}

void connection_gate::refuse(int fd, int status, std::string type, std::string message) {
  auto answer = closing_answer(
      api_error{status, std::move(type), std::move(message), {}, {}, status == 503 ? 1000 : -1});
  ::send(fd, answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  // Closing with unread bytes resets the connection, which can drop the answer on its way: take
  // what already came (a bounded amount, never waiting).
  char unread[16384];
  for (int i = 0; i < 4 && ::recv(fd, unread, sizeof unread, MSG_DONTWAIT) > 0; ++i) {
  }
  close(fd);
}

void connection_gate::run() {
  std::array<epoll_event, 256> events;
  auto next_sweep = clock::now() + sweep_interval;
  for (;;) {
    int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                         static_cast<int>(sweep_interval.count()));
    std::vector<waiting_connections::connection> ready;
    {
      std::lock_guard lock(mutex_);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.fd == wake_fd_) {
          std::uint64_t wakes = 0;
          [[maybe_unused]] auto ignored = ::read(wake_fd_, &wakes, sizeof wakes);
        } else if (auto c = on_readable(events[i].data.fd)) {
          ready.push_back(std::move(*c));
        }
      }
      auto now = clock::now();
      if (now >= next_sweep) {
        for (auto& expired : waiting_.take_expired(now)) {
          if (expired.head_begun)
            refuse(expired.conn.fd, 408, "request_timeout",
                   "the request head did not arrive in time; send it whole");
          else
            close(expired.conn.fd);
        }
        next_sweep = now + sweep_interval;
      }
      // Draining: the callers already connected are still served, once each.
      if (stopping_ && waiting_.size() == 0 && ready.empty())
        return;
    }
    for (auto& c : ready)
      ready_(std::move(c));
  }
}

std::optional<waiting_connections::connection> connection_gate::on_readable(int fd) {
  // The descriptor may have been closed and reused since the event: only what is held is read.
  if (!waiting_.holds(fd))
    return std::nullopt;
  char buffer[16384];
  auto n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    watch(fd, EPOLL_CTL_MOD);
    return std::nullopt;
  }
  if (n <= 0) {
    waiting_.take(fd);
    close(fd);
    return std::nullopt;
  }
  switch (waiting_.received(fd, {buffer, static_cast<std::size_t>(n)}, clock::now())) {
  case waiting_connections::progress::waiting:
    watch(fd, EPOLL_CTL_MOD);
    return std::nullopt;
  case waiting_connections::progress::head_too_large:
    waiting_.take(fd);
    refuse(fd, 431, "request_header_fields_too_large",
           "the request line and headers are over the size limit");
    return std::nullopt;
  case waiting_connections::progress::head_complete:
    break;
  }
  auto c = waiting_.take(fd);
  if (c->refuse) {
    refuse(fd, 503, "server_busy", "too many open connections; retry shortly");
    return std::nullopt;
  }
  return c;
}

} // namespace emr

#include "http/connection_stream.hpp"

#include "actors/arrivals.hpp"
#include "actors/waiting_scope.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace emr {

namespace {

// What httplib's own stream reads at once when asked for less, so a head read byte by byte
// costs one recv per buffer.
constexpr std::size_t refill_bytes = 4096;

void numeric_address(const sockaddr_storage& address, std::string& ip, int& port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    port = ntohs(v4.sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
    port = ntohs(v6.sin6_port);
  }
  ip = text;
}

} // namespace

connection_stream::connection_stream(int fd, std::string received, clock::duration read_timeout,
                                     clock::duration write_timeout)
    : fd_(fd), buffer_(std::move(received)), read_timeout_(read_timeout),
      write_timeout_(write_timeout) {}

std::string connection_stream::take_unread() {
  buffer_.erase(0, consumed_);
  consumed_ = 0;
  return std::move(buffer_);
}

bool connection_stream::wait_for(short events, clock::duration timeout) const {
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
  pollfd p{fd_, events, 0};
  if (ms <= 0 || ::poll(&p, 1, 0) > 0)
    return ms > 0;
  // Only a wait that blocks lends this thread's place.
  waiting_scope waiting;
  return ::poll(&p, 1, static_cast<int>(ms)) > 0;
}

bool connection_stream::is_readable() const {
  return consumed_ < buffer_.size() || (flush() && wait_for(POLLIN, read_timeout_));
}

bool connection_stream::is_writable() const {
  return wait_for(POLLOUT, write_timeout_);
}

ssize_t connection_stream::read(char* ptr, size_t size) {
  if (consumed_ < buffer_.size()) {
    auto n = std::min(size, buffer_.size() - consumed_);
    std::memcpy(ptr, buffer_.data() + consumed_, n);
    consumed_ += n;
    return static_cast<ssize_t>(n);
  }
  buffer_.clear();
  consumed_ = 0;
  if (!flush())
    return -1;
  // A request whose bytes are still on their way is no longer company on its way to a batch:
  // a slow client must not hold other callers' batches.
  if (pollfd p{fd_, POLLIN, 0}; ::poll(&p, 1, 0) == 0)
    arrivals::leave_current();
  auto now = clock::now();
  if (now >= read_deadline_ ||
      !wait_for(POLLIN, std::min<clock::duration>(read_timeout_, read_deadline_ - now))) {
    deadline_passed_ = clock::now() >= read_deadline_;
    return -1;
  }
  if (size >= refill_bytes)
    return ::recv(fd_, ptr, size, 0);
  buffer_.resize(refill_bytes);
  auto n = ::recv(fd_, buffer_.data(), refill_bytes, 0);
  buffer_.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return n > 0 ? read(ptr, size) : n;
}

ssize_t connection_stream::write(const char* ptr, size_t size) {
  if (detached_)
    return static_cast<ssize_t>(size);
  if (held_.empty() && size <= held_limit) {
    held_.assign(ptr, size);
    return static_cast<ssize_t>(size);
  }
  // What follows the head (the body) leaves with it, from httplib's own buffer.
  std::array<iovec, 2> parts{iovec{held_.data(), held_.size()},
                             iovec{const_cast<char*>(ptr), size}};
  bool sent = send_all(std::span{parts}.subspan(held_.empty() ? 1 : 0));
  held_.clear();
  return sent ? static_cast<ssize_t>(size) : -1;
}

bool connection_stream::flush() const {
  if (held_.empty())
    return true;
  iovec all{held_.data(), held_.size()};
  bool sent = send_all({&all, 1});
  held_.clear();
  return sent;
}

bool connection_stream::send_what_fits(int fd, std::span<iovec>& parts) {
  while (!parts.empty()) {
    msghdr message{};
    message.msg_iov = parts.data();
    message.msg_iovlen = parts.size();
    auto n = ::sendmsg(fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    auto sent = static_cast<std::size_t>(n);
    while (!parts.empty() && sent >= parts.front().iov_len) {
      sent -= parts.front().iov_len;
      parts = parts.subspan(1);
    }
    if (!parts.empty()) {
      parts.front().iov_base = static_cast<char*>(parts.front().iov_base) + sent;
      parts.front().iov_len -= sent;
    }
  }
  return true;
}

bool connection_stream::send_all(std::span<iovec> parts) const {
  // An answer nearly always fits the socket's buffer: waiting only when it is full spares every
  // answer a poll(2).
  while (send_what_fits(fd_, parts))
    if (parts.empty() || !wait_for(POLLOUT, write_timeout_))
      return parts.empty();
  return false;
}

void connection_stream::get_remote_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    numeric_address(address, ip, port);
}

void connection_stream::get_local_ip_and_port(std::string&, int&) const {
  // httplib asks on every request, and nothing in emr reads a request's local address: a
  // getsockname(2) per request for nothing.
}

} // namespace emr

#pragma once
// The one thread that watches every connection no HTTP thread holds (epoll): new connections,
// idle keep-alive ones, and those whose request head is still arriving. A connection goes to an
// HTTP thread only once its whole head is here, and comes back after each answer.
//
// So idle and slow clients cannot starve callers of threads: a head must arrive within its
// timeout (else 408 and close), an idle connection closes after the keep-alive timeout, a head
// over the size limit gets 431, and at the connection cap the connection idle longest is closed
// to make room (503 when none is idle, and past a margin for those, closed at once).

#include "http/waiting_connections.hpp"

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

namespace emr {

class connection_gate {
public:
  /// Called on the gate's thread with a connection whose request head is complete.
  using ready_handler = std::function<void(waiting_connections::connection)>;

  connection_gate(waiting_limits limits, std::size_t max_connections, ready_handler ready);
  ~connection_gate();
  connection_gate(const connection_gate&) = delete;
  connection_gate& operator=(const connection_gate&) = delete;

  /// Takes a newly accepted socket.
  void admit(int fd);
  /// Takes back a connection whose answer is written, to wait for its next request.
  void give_back(waiting_connections::connection c);
  /// Closes a connection an HTTP thread is done with.
  void close(int fd);
  /// Closes a connection whose last answer is sent: the client reads end of stream after it at
  /// once, and the gate drops what the client still sends until it closes (see
  /// waiting_connections::connection::closing).
  void close_after_answer(int fd);
  /// Returns once every connection it holds has sent its next request (handed on, to be
  /// answered with Connection: close) or timed out; connections given back later are closed.
  void stop();
  bool stopping() const { return stopping_; }

private:
  void run();
  /// Reads what `fd` sent; the lock is held. Returns the connection if its head is complete.
  std::optional<waiting_connections::connection> on_readable(int fd);
  void watch(int fd, int op);
  void refuse(int fd, int status, std::string type, std::string message);

  std::mutex mutex_;
  waiting_connections waiting_;
  std::size_t max_connections_;
  std::size_t most_open_; ///< the cap and the connections waiting for their 503 beyond it
  std::atomic<std::size_t> open_{0};
  ready_handler ready_;
  int epoll_fd_;
  int wake_fd_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

} // namespace emr

#pragma once
// One client connection as httplib reads and writes it while an HTTP thread serves a request:
// first the bytes the connection gate already received, then the socket, with a deadline for
// the whole body besides httplib's per-read timeout. An answer's head is held and sent with
// its body (see write).

#include <httplib.h>

#include <sys/uio.h>

#include <chrono>
#include <span>
#include <string>

namespace emr {

class connection_stream : public httplib::Stream {
public:
  using clock = std::chrono::steady_clock;

  /// `received`: what the client sent that nobody read yet (at least a whole request head).
  connection_stream(int fd, std::string received, clock::duration read_timeout,
                    clock::duration write_timeout);

  /// Reads after `deadline` fail, so a body sent a byte at a time cannot hold the thread.
  void read_until(clock::time_point deadline) { read_deadline_ = deadline; }
  /// Whether a read failed because the deadline had passed.
  bool deadline_passed() const { return deadline_passed_; }
  /// The bytes received but not read: the start of the client's next request, if any.
  std::string take_unread();

  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  /// Holds one write (an answer's head, up to `held_limit`) until the next write, `flush` or a
  /// read that must wait for the client, and sends it with the next write in one sendmsg(2):
  /// httplib writes an answer's head and its body apart, and each send(2) on a TCP_NODELAY
  /// socket goes as a segment of its own, a system call, a packet and a client wake-up more per
  /// answer.
  ssize_t write(const char* ptr, size_t size) override;
  /// Sends what writes hold; false if the connection would not take it in time.
  bool flush() const;
  /// The answer is written elsewhere (http/deferred_answer.hpp): writes from now on go nowhere.
  void detach() {
    detached_ = true;
    held_.clear();
  }
  bool detached() const { return detached_; }
  /// Sends what `fd` takes now of `parts`, advancing them past it; false on an error other than
  /// a full socket.
  static bool send_what_fits(int fd, std::span<iovec>& parts);
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  int socket() const override { return fd_; }

private:
  /// Waits for `events` up to `timeout`; true when they came.
  bool wait_for(short events, clock::duration timeout) const;
  /// Sends every byte of `parts`, waiting up to the write timeout each time the socket is full.
  bool send_all(std::span<iovec> parts) const;

  static constexpr std::size_t held_limit = 64 * 1024;

  int fd_;
  std::string buffer_;
  std::size_t consumed_ = 0; ///< bytes of buffer_ already read
  // Mutable: httplib asks is_readable (const) before it waits for a client, which must first
  // have every answer it is owed (a `100 Continue`, say).
  mutable std::string held_;
  clock::duration read_timeout_;
  clock::duration write_timeout_;
  clock::time_point read_deadline_ = clock::time_point::max();
  bool deadline_passed_ = false;
  bool detached_ = false;
};

} // namespace emr

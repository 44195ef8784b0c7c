#pragma once
// An answer written by the thread that brings its outcome, so that no HTTP thread sleeps while a
// caller's texts wait for their batch.
//
// A thread-per-request server parks one thread per caller and wakes it for each answer: on
// these two-core VMs a wake-up and the switches around it cost more than writing the answer
// does, and a burst of a thousand callers pays them a thousand times while the batch's answers
// go out. Deferred, the HTTP thread hands the request to the actors and goes on to the next
// one; the request actor that receives the outcome writes the answer with one non-blocking
// send (an HTTP thread finishes it only when the client's socket is full), and the connection
// goes back to the gate.
//
// Two parties finish with a connection: the HTTP thread, once httplib has read the request
// (and knows what the client sent past it), and the writer, once the answer is sent. Whichever
// is last hands the connection on (`connection_owner::carry_on`), so the next request on it is
// read only after this answer.

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace emr {

/// The server side of deferred answers: what happens to a connection once its answer is out.
class connection_owner {
public:
  virtual ~connection_owner() = default;
  struct answered {
    std::string unread;      ///< what the client sent past the request
    bool read_whole = false; ///< httplib read the request whole
    bool keep = false;       ///< the connection may carry another request
    bool failed = false;     ///< the answer could not be sent: close at once
  };
  /// The answer is out (or failed): the connection goes on as `how` says.
  virtual void carry_on(int fd, answered how) = 0;
  /// Runs `job` on a thread that may block or take long (an HTTP thread).
  virtual void run_blocking(std::function<void()> job) = 0;
  /// Whether the server is draining: answers then close their connections.
  virtual bool stopping() const = 0;
  virtual std::chrono::steady_clock::duration write_timeout() const = 0;
  /// The Keep-Alive header's value for an answer that keeps its connection.
  virtual std::string keep_alive() const = 0;
};

class deferred_answer : public std::enable_shared_from_this<deferred_answer> {
public:
  /// `client_closes`: the request asked to close its connection.
  deferred_answer(int fd, connection_owner& owner, bool client_closes);
  deferred_answer(const deferred_answer&) = delete;
  deferred_answer& operator=(const deferred_answer&) = delete;

  /// The HTTP thread is done with the request: what the client sent past it, whether httplib
  /// read it whole, and whether the connection may carry another.
  void request_done(std::string unread, bool read_whole, bool keep);
  /// Runs `job` on an HTTP thread (to render an answer too large for the thread that brought it).
  void elsewhere(std::function<void()> job) { owner_.run_blocking(std::move(job)); }
  /// Writes `res` as httplib would (status line, its headers, Content-Length, Keep-Alive or
  /// Connection: close), from whichever thread calls; once only. What the socket has no room for
  /// is written by an HTTP thread: this one if it `may_wait`.
  void send(httplib::Response res, bool may_wait = false);

private:
  /// Writes the last `left` bytes of the answer, waiting for room up to the write timeout.
  void finish(std::size_t left);
  /// The answer is out (`ok`) or failed.
  void written(bool ok);
  /// One party is done; the last hands the connection on.
  void party_done();

  int fd_;
  connection_owner& owner_;
  bool client_closes_;
  std::atomic<int> parties_{2};
  // Set by the HTTP thread before its party_done, read by the last party after.
  std::string unread_;
  bool read_whole_ = false;
  bool request_keep_ = false;
  // Set by the writer before its party_done.
  std::string head_;
  std::string body_;
  bool answer_keep_ = false;
  bool answer_failed_ = false;
};

/// Where an HTTP thread offers its connection to a route that answers later; null while none.
struct deferral_offer {
  int fd = -1;
  connection_owner* owner = nullptr;
  std::shared_ptr<deferred_answer> taken; ///< set by the route that took the offer
  /// Takes the offer, on the HTTP thread: the server counts the answer as owed, and httplib's
  /// own writes for this request go nowhere from now on. False, and nothing taken, when the
  /// server is draining.
  std::function<bool()> take;
};

/// The offer of the request this thread is serving, if any.
deferral_offer*& current_deferral_offer();

/// Takes the connection of `req` for an answer written later, or null where httplib must write
/// it (no offer, HTTP/1.0, the server draining).
std::shared_ptr<deferred_answer> defer_answer(const httplib::Request& req);

} // namespace emr

// The requests a provider serves at once per API key (--concurrency). Beyond that number, calls
// wait their turn in arrival order, as they do at a real API under load, and the wait is part of
// their latency. Each waiting call sleeps on its own condition variable and is woken only when a
// slot passes to it, so a thousand queued calls cost nothing while they wait.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace emr::fake {

class request_queue {
  struct line;

public:
  /// A call's slot at the provider, given back when the call is answered. Empty when there is
  /// no limit, or when the provider stopped while the call waited.
  class turn {
  public:
    turn() = default;
    turn(turn&& other) noexcept;
    turn& operator=(turn&&) = delete;
    ~turn();

  private:
    friend class request_queue;
    turn(request_queue* queue, line* held) : queue_(queue), held_(held) {}
    request_queue* queue_ = nullptr;
    line* held_ = nullptr;
  };

  struct counts {
    long waiting = 0;      ///< calls waiting for a slot now
    long peak_waiting = 0; ///< the most that waited at once since the last reset
  };

  /// `per_key_limit` 0: every call is served at once.
  explicit request_queue(int per_key_limit) : limit_(per_key_limit) {}

  /// Waits until `key` has a free slot and every call that came before has had its turn; returns
  /// at once (with an empty turn) once stop() was called.
  turn wait_for_turn(const std::string& key);
  /// Ends every wait, so SIGTERM is not held up by a queue.
  void stop();
  counts queue_counts();
  /// The peak starts again from the calls waiting now.
  void reset_peak();

private:
  struct waiter {
    std::condition_variable woken;
    bool admitted = false;
  };
  /// One API key's calls: how many hold a slot, and who waits for one, first in line at the front.
  struct line {
    int served = 0;
    std::deque<waiter*> waiting;
  };

  void give_back(line& held);

  const int limit_;
  std::mutex mutex_;
  std::unordered_map<std::string, line> lines_; // nodes: a line's address never changes
  long waiting_ = 0, peak_waiting_ = 0;
  bool stopping_ = false;
};

} // namespace emr::fake

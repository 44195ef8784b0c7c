#pragma once
// Requests emr has begun to serve whose chunks have not reached a batcher yet. While any are,
// a partial batch's company is known to be on its way rather than predicted from gaps: on a busy
// host a burst's requests wait for a CPU far longer than the gaps between them suggest, and a
// batch sent into such a pause costs one more upstream call. HTTP threads count; batchers read.

#include <atomic>
#include <cstddef>
#include <memory>

namespace emr {

class arrivals : public std::enable_shared_from_this<arrivals> {
public:
  /// A request's count handed from its HTTP thread to the actor that takes its chunks to the
  /// batchers: it counts while any copy lives.
  using in_transit = std::shared_ptr<const void>;

  /// One request on its way in, counted while it lives or until `leave_current`. It is its
  /// thread's current one (a thread serves one request at a time), so code deep in the
  /// request's path can end it without a handle.
  class entry {
  public:
    explicit entry(arrivals& all);
    ~entry();
    entry(const entry&) = delete;
    entry& operator=(const entry&) = delete;

  private:
    friend class arrivals;
    void leave();

    arrivals* all_;
  };

  /// A request counted from now until the returned handle is gone: one whose head has arrived
  /// but which no HTTP thread has taken yet. The arrivals must be a shared object.
  in_transit arrive();

  /// The current thread's request stops counting: its chunks are on their way to the batchers,
  /// it was refused, or it now waits on something other than emr's CPU (bytes still in the
  /// network, an argon2 run, the store).
  static void leave_current();
  /// Hands the current thread's request on (empty when none counts): the thread is done with
  /// it, but it still counts until its chunks are sent. The arrivals must be a shared object.
  static in_transit hand_over_current();

  std::size_t under_way() const { return count_.load(std::memory_order_relaxed); }

private:
  std::atomic<std::size_t> count_{0};
};

} // namespace emr

// Per-key concurrency with a FIFO queue; see request_queue.hpp.

#include "tools/fake_provider/request_queue.hpp"

#include <algorithm>
#include <utility>

namespace emr::fake {

request_queue::turn::turn(turn&& other) noexcept
    : queue_(std::exchange(other.queue_, nullptr)), held_(std::exchange(other.held_, nullptr)) {}

request_queue::turn::~turn() {
  if (held_)
    queue_->give_back(*held_);
}

request_queue::turn request_queue::wait_for_turn(const std::string& key) {
  if (limit_ <= 0)
    return {};
  std::unique_lock lock(mutex_);
  if (stopping_)
    return {};
  line& l = lines_[key];
  if (l.waiting.empty() && l.served < limit_) {
    ++l.served;
    return {this, &l};
  }
  waiter me;
  l.waiting.push_back(&me);
  peak_waiting_ = std::max(peak_waiting_, ++waiting_);
  me.woken.wait(lock, [&] { return me.admitted || stopping_; });
  --waiting_;
  if (me.admitted)
    return {this, &l};
  l.waiting.erase(std::find(l.waiting.begin(), l.waiting.end(), &me));
  return {};
}

// The slot passes straight to the first in line, so a newcomer cannot take it before them.
// Notified under the lock: once unlocked, the woken call may return and destroy its waiter.
void request_queue::give_back(line& held) {
  std::lock_guard lock(mutex_);
  if (held.waiting.empty()) {
    --held.served;
    return;
  }
  waiter* next = held.waiting.front();
  held.waiting.pop_front();
  next->admitted = true;
  next->woken.notify_one();
}

void request_queue::stop() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  for (auto& [key, l] : lines_)
    for (waiter* w : l.waiting)
      w->woken.notify_one();
}

request_queue::counts request_queue::queue_counts() {
  std::lock_guard lock(mutex_);
  return {waiting_, peak_waiting_};
}

void request_queue::reset_peak() {
  std::lock_guard lock(mutex_);
  peak_waiting_ = waiting_;
}

} // namespace emr::fake

#pragma once
// What the other replicas of a fleet changed in the shared PostgreSQL store, as it happens: the
// store's writes NOTIFY, this LISTENs on a connection of its own, and re-reads everything every
// `resync` and after each reconnect, so a notification missed while the connection was down
// heals on its own.

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace emr {

/// The channel the store's writes notify, and what their payload names.
inline constexpr const char* change_channel = "emr_changes";
/// `pauses`: a provider refused a replica with 429 and every replica is to wait (fleet_ledger).
enum class change_topic { keys, providers, pauses };
const char* topic_name(change_topic topic);

class postgres_changes {
public:
  /// Called on this object's own thread; it may block on the store. It reports its own failures:
  /// what it throws is dropped, and the next change or resync calls it again.
  using handler = std::function<void(change_topic)>;

  postgres_changes(std::string url, handler on_change,
                   std::chrono::milliseconds resync = std::chrono::seconds{2});
  ~postgres_changes();
  postgres_changes(const postgres_changes&) = delete;
  postgres_changes& operator=(const postgres_changes&) = delete;

private:
  void run();
  /// Calls the handler for `topic`, dropping what it throws.
  void deliver(change_topic topic);
  /// Waits for the socket `fd` (none: -1) or the wake-up, at most `timeout`; true when fd is
  /// readable.
  bool wait(int fd, std::chrono::milliseconds timeout) const;

  std::string url_;
  handler on_change_;
  std::chrono::milliseconds resync_;
  std::atomic<bool> stopping_{false};
  int wake_fd_ = -1;
  std::thread thread_;
};

} // namespace emr

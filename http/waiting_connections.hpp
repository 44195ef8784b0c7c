#pragma once
// The connections no HTTP thread holds: new and idle keep-alive ones, and those whose request
// head is still arriving. A plain table with the time passed in; the connection gate does the I/O.
//
// A connection gets a thread only once its whole request head is here, so a client that sends
// nothing, or its head a byte at a time, costs a table entry and never a thread.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace emr {

struct waiting_limits {
  std::chrono::steady_clock::duration idle_timeout; ///< a connection with no request begun
  std::chrono::steady_clock::duration head_timeout; ///< from a head's first byte to its end
  std::size_t max_head_bytes = 32 * 1024;
};

/// Where a request head ends: one past the blank line after its request line, as httplib reads
/// it (lines end in LF, the blank one is CR LF), or nullopt while it is not all here.
std::optional<std::size_t> request_head_end(std::string_view received);

class waiting_connections {
public:
  using time_point = std::chrono::steady_clock::time_point;

  /// A connection handed back out of the table, with the bytes it sent that nobody read yet.
  struct connection {
    int fd = -1;
    std::string received;
    bool refuse = false; ///< over the connection cap: its request is answered 503
    /// Its last answer is sent: what the client still sends is read and dropped until it closes
    /// or the idle timeout passes, since closing on unread bytes resets the connection, which
    /// can take the answer with it.
    bool closing = false;
  };

  enum class progress { waiting, head_complete, head_too_large };

  explicit waiting_connections(waiting_limits limits) : limits_(limits) {}

  /// Starts holding `c`; it is idle until it sends a byte unless it already has.
  void add(connection c, time_point now);
  /// Appends bytes `fd` sent (drops them if it is closing); says whether its request head is
  /// complete (or can never be).
  progress received(int fd, std::string_view bytes, time_point now);
  /// Stops holding `fd` and hands it back; nullopt if it is not held.
  std::optional<connection> take(int fd);

  struct expiry {
    connection conn;
    bool head_begun = false; ///< a request head was arriving (408), else it was idle
  };
  /// Takes every connection idle past the idle timeout or slow past the head timeout.
  std::vector<expiry> take_expired(time_point now);
  /// Takes the connection idle the longest, if any is idle at all.
  std::optional<connection> take_oldest_idle();

  bool holds(int fd) const { return held_.count(fd) > 0; }
  std::size_t size() const { return held_.size(); }

private:
  struct held {
    connection conn;
    time_point since;        ///< idle since, or the head's first byte
    std::size_t scanned = 0; ///< bytes already searched for the head's end
  };

  std::optional<std::size_t> head_end(held& h);

  waiting_limits limits_;
  std::unordered_map<int, held> held_;
};

} // namespace emr

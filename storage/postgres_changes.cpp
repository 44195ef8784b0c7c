#include "storage/postgres_changes.hpp"

#include "storage/postgres_connection.hpp"
#include "storage/store.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string_view>

namespace emr {

namespace {

using listening_connection = std::unique_ptr<pg::connection>;

/// A connection that listens on change_channel, or none when the server cannot be reached.
listening_connection listen(const std::string& url) {
  static_assert(std::string_view{change_channel} == "emr_changes");
  try {
    auto db = std::make_unique<pg::connection>(url);
    pg::checked(*db, "LISTEN emr_changes", "listening for changes");
    return db;
  } catch (const storage_error&) {
    return nullptr; // the store reports its own outage; this retries after the resync period
  }
}

} // namespace

const char* topic_name(change_topic topic) {
  switch (topic) {
  case change_topic::keys:
    return "keys";
  case change_topic::pauses:
    return "pauses";
  case change_topic::providers:
    break;
  }
  return "providers";
}

postgres_changes::postgres_changes(std::string url, handler on_change,
                                   std::chrono::milliseconds resync)
    : url_(std::move(url)), on_change_(std::move(on_change)), resync_(resync),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (wake_fd_ < 0)
    throw storage_error("postgres_changes: cannot create an eventfd");
  thread_ = std::thread([this] { run(); });
}

postgres_changes::~postgres_changes() {
  stopping_ = true;
  std::uint64_t one = 1;
  [[maybe_unused]] auto ignored = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
  ::close(wake_fd_);
}

void postgres_changes::deliver(change_topic topic) {
  try {
    on_change_(topic);
  } catch (...) {
    // The handler logged it; the next notification or resync tries again.
  }
}

bool postgres_changes::wait(int fd, std::chrono::milliseconds timeout) const {
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
  int n =
      ::poll(fds, fd >= 0 ? 2 : 1, static_cast<int>(std::max<std::int64_t>(timeout.count(), 0)));
  return n > 0 && fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR));
}

void postgres_changes::run() {
  using clock = std::chrono::steady_clock;
  listening_connection db;
  auto next_resync = clock::now();
  while (!stopping_) {
    if (!db) {
      db = listen(url_);
      if (!db) {
        wait(-1, resync_); // the store is down too: nothing to read until it is back
        continue;
      }
      // Whatever changed while nobody listened is read again now.
      next_resync = clock::now();
    }
    auto now = clock::now();
    if (now >= next_resync) {
      deliver(change_topic::keys);
      deliver(change_topic::providers);
      next_resync = clock::now() + resync_;
      continue;
    }
    auto timeout = std::chrono::ceil<std::chrono::milliseconds>(next_resync - now);
    auto* raw = db->raw();
    if (!wait(PQsocket(raw), timeout) || stopping_)
      continue;
    if (!PQconsumeInput(raw)) {
      db.reset(); // the server went away: reconnect, then resync
      continue;
    }
    bool keys = false, providers = false, pauses = false;
    while (auto* note = PQnotifies(raw)) {
      keys |= std::strcmp(note->extra, topic_name(change_topic::keys)) == 0;
      providers |= std::strcmp(note->extra, topic_name(change_topic::providers)) == 0;
      pauses |= std::strcmp(note->extra, topic_name(change_topic::pauses)) == 0;
      PQfreemem(note);
    }
    // A burst of changes is read once.
    if (keys)
      deliver(change_topic::keys);
    if (providers)
      deliver(change_topic::providers);
    if (pauses)
      deliver(change_topic::pauses);
  }
}

} // namespace emr

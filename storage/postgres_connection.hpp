#pragma once
// What every user of libpq in emr needs: a connection that reopens itself, statements with bound
// parameters whose failures become storage errors, and transactions that roll back unless
// committed. The store, the fleet's budget ledger and the migration all speak through these.

#include "storage/store.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace emr::pg {

class parameters;
class result;

/// One connection to the database a URL names, whose every connect and statement is answered
/// within its deadline or abandoned. A connection found broken is reopened once per use, so a
/// restarted server costs the uses made while it was down, not the connection.
class connection {
public:
  using clock = std::chrono::steady_clock;

  /// Connects; throws store_unavailable, without the URL's password, when it cannot within
  /// `deadline_s`. The server `options` (`-c name=value ...`) apply unless the URL names its own.
  explicit connection(std::string url, int deadline_s = 5, std::string options = {});
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// The connection, reopened when it broke; store_unavailable when that fails. A use that
  /// asked at `asked_at` and found it broken since fails at once: it queued behind the use that
  /// found the server gone, and trying again would make each waiting use wait out the deadline
  /// in turn.
  connection& open(clock::time_point asked_at = clock::now());
  /// The connection as it is, never reopened: a listener's LISTEN does not survive a reconnect,
  /// so it must see the break and listen again itself. Null once abandoned.
  pg_conn* raw() { return db_.get(); }
  /// The URL without its password, for messages.
  const std::string& where() const { return where_; }

private:
  friend result checked(connection&, std::string_view, std::string_view, const parameters&);
  friend void execute_script(connection&, std::string_view, std::string_view);

  struct closer {
    void operator()(pg_conn*) const;
  };
  /// Sends `sql` with `params`, or as a script of several statements when there are none, and
  /// waits for its result at most the deadline. A server that does not answer by then is not
  /// asked to cancel (that would wait for it too): the connection is closed, and reopened at the
  /// next open().
  result exchange(std::string_view sql, std::string_view operation, const parameters* params);
  /// Waits until libpq's socket is ready for `events` (POLLIN, POLLOUT); false when `deadline`
  /// passed first.
  bool wait(short events, clock::time_point deadline) const;
  /// Opens a new connection within the deadline; why it could not, or empty.
  std::string connect();
  /// Closes the connection, notes when it broke, and throws store_unavailable with `why`.
  [[noreturn]] void abandon(std::string why);

  std::string url_, where_, options_;
  std::chrono::milliseconds deadline_;
  std::unique_ptr<pg_conn, closer> db_;
  std::optional<clock::time_point> lost_at_; ///< when it last broke, until it is reopened
};

/// One result, cleared on every path.
class result {
public:
  explicit result(pg_result* r) : r_(r) {}
  ~result();
  result(result&& other) noexcept : r_(std::exchange(other.r_, nullptr)) {}
  result(const result&) = delete;
  result& operator=(const result&) = delete;
  result& operator=(result&&) = delete;

  int rows() const;
  std::string text(int row, int column) const;
  std::int64_t integer(int row, int column) const;
  double real(int row, int column) const;
  std::optional<std::int64_t> optional_integer(int row, int column) const;
  /// Rows an INSERT, UPDATE or DELETE touched.
  std::int64_t changed() const;

private:
  pg_result* r_;
};

/// A statement's parameters, each sent as text.
class parameters {
public:
  parameters& text(std::string_view value) {
    values_.emplace_back(value);
    return *this;
  }
  parameters& integer(std::int64_t value) {
    values_.push_back(std::to_string(value));
    return *this;
  }
  parameters& real(double value);
  const std::vector<std::string>& values() const { return values_; }

private:
  std::vector<std::string> values_;
};

/// libpq's message without its trailing newline.
std::string trimmed(std::string why);

/// A statement that must succeed: storage_error otherwise, store_unavailable when the server went
/// away under it (whether it committed is then unknown, so the caller is never told it did).
result checked(connection& db, std::string_view sql, std::string_view operation,
               const parameters& params = {});

/// Several statements in one string (a migration step), sent as one simple query.
void execute_script(connection& db, std::string_view sql, std::string_view operation);

/// BEGIN now, ROLLBACK unless committed.
class transaction {
public:
  transaction(connection& db, std::string_view operation);
  ~transaction();
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  void commit();

private:
  connection& db_;
  std::string operation_;
  bool committed_ = false;
};

} // namespace emr::pg

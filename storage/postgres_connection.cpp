#include "storage/postgres_connection.hpp"

#include "storage/database_url.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>

namespace emr::pg {

void connection::closer::operator()(pg_conn* db) const {
  PQfinish(db);
}

connection::connection(std::string url, int deadline_s, std::string options)
    : url_(std::move(url)), where_(redacted_database_url(url_)), options_(std::move(options)),
      deadline_(std::chrono::seconds{deadline_s}) {
  // libpq's reason for a URL it cannot parse quotes the URL's text, password included.
  char* parse_error = nullptr;
  auto* parsed = PQconninfoParse(url_.c_str(), &parse_error);
  PQfreemem(parse_error);
  if (!parsed)
    throw store_unavailable("postgres: " + where_ +
                            " is not a valid database URL (libpq's reason is not shown: it quotes "
                            "the URL); percent-encode reserved characters in the password");
  PQconninfoFree(parsed);
  if (auto why = connect(); !why.empty())
    throw store_unavailable("postgres: cannot connect to " + where_ + ": " + why);
}

connection::~connection() = default;

std::string connection::connect() {
  auto deadline = clock::now() + deadline_;
  // A connection that idles between uses (the change listener's) has no deadline to notice a
  // server gone silent: the kernel ends it after unanswered keepalives (10 s idle, then 3 probes
  // 2 s apart) or data unacknowledged for 10 s. The URL's own values win, being expanded after
  // these defaults.
  const char* keywords[] = {
      "options",          "keepalives",       "keepalives_idle", "keepalives_interval",
      "keepalives_count", "tcp_user_timeout", "dbname",          nullptr};
  const char* values[] = {options_.c_str(), "1", "10", "2", "3", "10000", url_.c_str(), nullptr};
  // Connected step by step rather than by PQconnectdbParams, so that the deadline bounds the
  // whole of it (libpq's connect_timeout counts whole seconds, at least 2, per address).
  db_.reset(PQconnectStartParams(keywords, values, 1));
  if (!db_)
    return "out of memory";
  auto polling = PGRES_POLLING_WRITING;
  while (polling != PGRES_POLLING_OK) {
    if (polling == PGRES_POLLING_FAILED || PQstatus(db_.get()) == CONNECTION_BAD) {
      auto why = trimmed(PQerrorMessage(db_.get()));
      db_.reset();
      return why;
    }
    if (!wait(polling == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline)) {
      db_.reset();
      return fmt::format("no answer within {} ms", deadline_.count());
    }
    polling = PQconnectPoll(db_.get());
  }
  // Never blocking: a statement's send waits for the socket here, within the deadline, and
  // closing a connection whose server stopped reading does not wait for it to read again.
  PQsetnonblocking(db_.get(), 1);
  // The server's notices (a migration's "already exists, skipping") are not the operator's
  // business; libpq would print each to stderr, outside the log.
  PQsetNoticeProcessor(
      db_.get(), [](void*, const char*) {}, nullptr);
  return {};
}

connection& connection::open(clock::time_point asked_at) {
  if (db_ && PQstatus(db_.get()) == CONNECTION_OK)
    return *this;
  if (lost_at_ && *lost_at_ >= asked_at)
    throw store_unavailable("postgres: " + where_ +
                            " did not answer the use this one queued behind");
  if (auto why = connect(); !why.empty()) {
    lost_at_ = clock::now();
    throw store_unavailable("postgres: cannot reach " + where_ + ": " + why);
  }
  lost_at_.reset();
  return *this;
}

bool connection::wait(short events, clock::time_point deadline) const {
  pollfd socket{PQsocket(db_.get()), events, 0};
  if (socket.fd < 0)
    return true; // libpq reports what is wrong
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0)
      return false;
    auto ready = ::poll(&socket, 1, static_cast<int>(left));
    if (ready > 0 || (ready < 0 && errno != EINTR))
      return true;
  }
}

void connection::abandon(std::string why) {
  db_.reset();
  lost_at_ = clock::now();
  throw store_unavailable(std::move(why));
}

result connection::exchange(std::string_view sql, std::string_view operation,
                            const parameters* params) {
  auto what = "postgres: " + std::string(operation) + ": ";
  if (!db_) // abandoned earlier in this use, within a transaction that is gone with it
    throw store_unavailable(what + "the connection to " + where_ + " was closed");
  auto* db = db_.get();
  auto deadline = clock::now() + deadline_;
  auto silent = [&] {
    return what + fmt::format("no answer from {} within {} ms", where_, deadline_.count());
  };
  std::string text(sql);
  int sent = 0;
  if (params) {
    std::vector<const char*> values;
    std::vector<int> lengths;
    for (const auto& v : params->values()) {
      values.push_back(v.c_str());
      lengths.push_back(static_cast<int>(v.size()));
    }
    sent = PQsendQueryParams(db, text.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), lengths.data(), nullptr, 0);
  } else {
    sent = PQsendQuery(db, text.c_str());
  }
  PGresult* last = nullptr;
  if (sent) {
    // What did not fit in the socket's buffer goes out as the server reads; its answers are read
    // meanwhile, as libpq asks, so that neither side waits on a full buffer.
    for (int unsent = PQflush(db); unsent > 0; unsent = PQflush(db)) {
      if (!wait(POLLIN | POLLOUT, deadline))
        abandon(silent());
      PQconsumeInput(db);
    }
    // A script has one result per statement: the last one tells, unless an earlier one failed.
    for (;;) {
      while (PQisBusy(db)) {
        if (!wait(POLLIN, deadline)) {
          PQclear(last);
          abandon(silent());
        }
        if (!PQconsumeInput(db))
          break; // the connection broke: PQgetResult says how, without waiting
      }
      auto* next = PQgetResult(db);
      if (!next)
        break;
      auto status = last ? PQresultStatus(last) : PGRES_COMMAND_OK;
      if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        std::swap(last, next);
      PQclear(next);
    }
  }
  result r{last};
  auto status = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
    return r;
  auto why = what + trimmed(last ? PQresultErrorMessage(last) : PQerrorMessage(db));
  if (PQstatus(db) != CONNECTION_OK) {
    lost_at_ = clock::now();
    throw store_unavailable(why);
  }
  throw storage_error(why);
}

result::~result() {
  PQclear(r_);
}

int result::rows() const {
  return PQntuples(r_);
}

std::string result::text(int row, int column) const {
  return {PQgetvalue(r_, row, column), static_cast<std::size_t>(PQgetlength(r_, row, column))};
}

std::int64_t result::integer(int row, int column) const {
  return std::stoll(PQgetvalue(r_, row, column));
}

double result::real(int row, int column) const {
  return std::stod(PQgetvalue(r_, row, column));
}

std::optional<std::int64_t> result::optional_integer(int row, int column) const {
  if (PQgetisnull(r_, row, column))
    return std::nullopt;
  return integer(row, column);
}

std::int64_t result::changed() const {
  const char* n = PQcmdTuples(r_);
  return *n ? std::stoll(n) : 0;
}

parameters& parameters::real(double value) {
  // Shortest text that reads back as the same double.
  values_.push_back(fmt::format("{}", value));
  return *this;
}

std::string trimmed(std::string why) {
  while (!why.empty() && (why.back() == '\n' || why.back() == ' '))
    why.pop_back();
  return why;
}

result checked(connection& db, std::string_view sql, std::string_view operation,
               const parameters& params) {
  return db.exchange(sql, operation, &params);
}

void execute_script(connection& db, std::string_view sql, std::string_view operation) {
  db.exchange(sql, operation, nullptr);
}

transaction::transaction(connection& db, std::string_view operation)
    : db_(db), operation_(operation) {
  checked(db_, "BEGIN", operation_);
}

transaction::~transaction() {
  if (committed_ || !db_.raw())
    return; // a connection closed mid-way took the transaction with it
  try {
    execute_script(db_, "ROLLBACK", operation_);
  } catch (const storage_error&) {
    // The server rolls back a transaction whose connection it finds broken.
  }
}

void transaction::commit() {
  checked(db_, "COMMIT", operation_);
  committed_ = true;
}

} // namespace emr::pg

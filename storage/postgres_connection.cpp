#include "storage/postgres_connection.hpp"

#include "storage/database_url.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

namespace emr::pg {

void connection::closer::operator()(pg_conn* db) const {
  PQfinish(db);
}

connection::connection(std::string url, int connect_timeout_s, std::string options)
    : url_(std::move(url)), where_(redacted_database_url(url_)) {
  // libpq's reason for a URL it cannot parse quotes the URL's text, password included.
  char* parse_error = nullptr;
  auto* parsed = PQconninfoParse(url_.c_str(), &parse_error);
  PQfreemem(parse_error);
  if (!parsed)
    throw store_unavailable("postgres: " + where_ +
                            " is not a valid database URL (libpq's reason is not shown: it quotes "
                            "the URL); percent-encode reserved characters in the password");
  PQconninfoFree(parsed);
  // A server cut off (not down) would hold every reconnect for minutes without a timeout; one
  // the URL names wins, being expanded after these defaults.
  auto timeout = std::to_string(connect_timeout_s);
  const char* keywords[] = {"connect_timeout", "options", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), options.c_str(), url_.c_str(), nullptr};
  db_.reset(PQconnectdbParams(keywords, values, 1));
  if (!db_ || PQstatus(db_.get()) != CONNECTION_OK)
    throw store_unavailable("postgres: cannot connect to " + where_ + ": " +
                            trimmed(db_ ? PQerrorMessage(db_.get()) : "out of memory"));
  // The server's notices (a migration's "already exists, skipping") are not the operator's
  // business; libpq would print each to stderr, outside the log.
  PQsetNoticeProcessor(
      db_.get(), [](void*, const char*) {}, nullptr);
}

connection::~connection() = default;

pg_conn* connection::get() {
  if (PQstatus(db_.get()) != CONNECTION_OK) {
    PQreset(db_.get());
    if (PQstatus(db_.get()) != CONNECTION_OK)
      throw store_unavailable("postgres: cannot reach " + where_ + ": " +
                              trimmed(PQerrorMessage(db_.get())));
  }
  return db_.get();
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

namespace {

/// Throws unless `raw` is a success.
void check(pg_conn* db, PGresult* raw, std::string_view operation) {
  auto status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
    return;
  auto why = "postgres: " + std::string(operation) + ": " +
             trimmed(raw ? PQresultErrorMessage(raw) : PQerrorMessage(db));
  if (PQstatus(db) != CONNECTION_OK)
    throw store_unavailable(why);
  throw storage_error(why);
}

} // namespace

result checked(pg_conn* db, std::string_view sql, std::string_view operation,
               const parameters& params) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  for (const auto& v : params.values()) {
    values.push_back(v.c_str());
    lengths.push_back(static_cast<int>(v.size()));
  }
  auto* raw = PQexecParams(db, std::string(sql).c_str(), static_cast<int>(values.size()), nullptr,
                           values.data(), lengths.data(), nullptr, 0);
  result r{raw};
  check(db, raw, operation);
  return r;
}

void execute_script(pg_conn* db, std::string_view sql, std::string_view operation) {
  auto* raw = PQexec(db, std::string(sql).c_str());
  result r{raw};
  check(db, raw, operation);
}

transaction::transaction(pg_conn* db, std::string_view operation) : db_(db), operation_(operation) {
  checked(db_, "BEGIN", operation_);
}

transaction::~transaction() {
  if (!committed_)
    PQclear(PQexec(db_, "ROLLBACK"));
}

void transaction::commit() {
  checked(db_, "COMMIT", operation_);
  committed_ = true;
}

} // namespace emr::pg

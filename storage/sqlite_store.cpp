// sqlite_store: every statement is prepared and bound, so names are stored verbatim whatever
// characters they hold.

#include "storage/sqlite_store.hpp"

#include "storage/migrations.hpp"
#include "storage/record_rows.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace emr {

namespace {

constexpr mode_t owner_only = 0600;
constexpr int busy_timeout_ms = 5000;

[[noreturn]] void fail(sqlite3* db, std::string_view operation) {
  throw storage_error("sqlite_store: " + std::string(operation) + ": " + sqlite3_errmsg(db));
}

[[noreturn]] void fail_errno(std::string_view operation, const std::filesystem::path& file) {
  throw storage_error("sqlite_store: " + std::string(operation) + " " + file.string() + ": " +
                      std::strerror(errno));
}

/// One prepared statement, finalized on every path.
class statement {
public:
  statement(sqlite3* db, std::string_view sql, std::string_view operation)
      : db_(db), operation_(operation) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
        SQLITE_OK)
      fail(db_, operation_);
  }
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  statement& bind(int index, std::string_view text) {
    // A null pointer would bind SQL NULL, but an empty string_view is still an empty string.
    // SQLITE_TRANSIENT: the caller's buffer may die before the step.
    const char* bytes = text.data() ? text.data() : "";
    check(sqlite3_bind_text64(stmt_, index, bytes, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    return *this;
  }
  statement& bind(int index, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  statement& bind(int index, double value) {
    check(sqlite3_bind_double(stmt_, index, value));
    return *this;
  }
  statement& bind(int index, const std::vector<float>& values) {
    check(sqlite3_bind_blob64(stmt_, index, values.data(), values.size() * sizeof(float),
                              SQLITE_TRANSIENT));
    return *this;
  }

  /// True when a row is ready, false when the statement has finished.
  bool step() {
    switch (sqlite3_step(stmt_)) {
    case SQLITE_ROW:
      return true;
    case SQLITE_DONE:
      return false;
    default:
      fail(db_, operation_);
    }
  }

  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  std::string text(int column) const {
    auto bytes = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return bytes ? std::string(bytes, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)))
                 : std::string();
  }
  std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  double real(int column) const { return sqlite3_column_double(stmt_, column); }
  std::vector<float> floats(int column) const {
    static_assert(std::endian::native == std::endian::little, "emr assumes a little-endian host");
    auto bytes = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column));
    std::vector<float> out(bytes / sizeof(float));
    if (!out.empty())
      std::memcpy(out.data(), sqlite3_column_blob(stmt_, column), out.size() * sizeof(float));
    return out;
  }
  std::optional<std::int64_t> optional_integer(int column) const {
    if (sqlite3_column_type(stmt_, column) == SQLITE_NULL)
      return std::nullopt;
    return integer(column);
  }

private:
  void check(int rc) {
    if (rc != SQLITE_OK)
      fail(db_, operation_);
  }

  sqlite3* db_;
  std::string_view operation_;
  sqlite3_stmt* stmt_ = nullptr;
};

void execute(sqlite3* db, const char* sql, std::string_view operation) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
    fail(db, operation);
}

/// BEGIN IMMEDIATE takes the write lock up front, so a transaction that reads then writes cannot
/// fail halfway with SQLITE_BUSY. Rolls back unless committed.
class write_transaction {
public:
  write_transaction(sqlite3* db, std::string_view operation) : db_(db), operation_(operation) {
    execute(db_, "BEGIN IMMEDIATE", operation_);
  }
  ~write_transaction() {
    if (!committed_)
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  write_transaction(const write_transaction&) = delete;
  write_transaction& operator=(const write_transaction&) = delete;

  void commit() {
    execute(db_, "COMMIT", operation_);
    committed_ = true;
  }

private:
  sqlite3* db_;
  std::string_view operation_;
  bool committed_ = false;
};

// Secrets' hashes live here: no other local user may read them, nor the WAL that holds them too.
void create_parent_directory(const std::filesystem::path& database_file) {
  auto parent = database_file.parent_path();
  if (parent.empty())
    return;
  std::error_code ec;
  if (std::filesystem::create_directories(parent, ec))
    std::filesystem::permissions(parent, std::filesystem::perms::owner_all, ec);
  if (ec)
    throw storage_error("sqlite_store: cannot create directory " + parent.string() + ": " +
                        ec.message());
}

// Created here rather than by SQLite so the file is 0600 from its first byte. SQLite gives the
// -wal and -shm files it creates later the main file's mode. An existing file is only ever named
// by path, never opened: closing any descriptor of a file drops every POSIX lock this process
// holds on it, so another connection here (the cache's) would lose its locks, and another
// process's `.backup` could then checkpoint and delete the WAL under it (SQLite's "How To Corrupt
// Your Database Files", 2.2).
void create_owner_only_file(const std::filesystem::path& database_file) {
  int fd = ::open(database_file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, owner_only);
  if (fd >= 0)
    ::close(fd); // new, so no lock of this process is on it yet
  else if (errno != EEXIST)
    fail_errno("cannot create", database_file);
  struct stat st {};
  if (::stat(database_file.c_str(), &st) != 0)
    fail_errno("cannot stat", database_file);
  if (!S_ISREG(st.st_mode))
    throw storage_error("sqlite_store: cannot open " + database_file.string() +
                        ": not a regular file");
  if ((st.st_mode & 0777) != owner_only && ::chmod(database_file.c_str(), owner_only) != 0)
    fail_errno("cannot chmod 0600", database_file);
  // Side files left by an older, looser version keep their mode otherwise.
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    auto side_file = database_file.string() + suffix;
    if (::chmod(side_file.c_str(), owner_only) != 0 && errno != ENOENT)
      fail_errno("cannot chmod 0600", side_file);
  }
}

std::string single_text_row(sqlite3* db, const char* sql, std::string_view operation) {
  statement query(db, sql, operation);
  if (!query.step())
    throw storage_error("sqlite_store: " + std::string(operation) + ": no result");
  return query.text(0);
}

std::int64_t recorded_schema_version(sqlite3* db) {
  statement query(db, "SELECT coalesce(max(version), 0) FROM schema_migrations",
                  "read schema version");
  query.step();
  return query.integer(0);
}

void check_known(std::int64_t version, const std::filesystem::path& database_file) {
  if (version > latest_schema_version)
    throw storage_error("sqlite_store: " + database_file.string() + " has schema version " +
                        std::to_string(version) + " but this emr knows only up to " +
                        std::to_string(latest_schema_version) + "; upgrade emr");
}

void migrate(sqlite3* db, const std::filesystem::path& database_file) {
  execute(db,
          "CREATE TABLE IF NOT EXISTS schema_migrations"
          " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
          "create schema_migrations");
  auto current = recorded_schema_version(db);
  check_known(current, database_file);
  for (const auto& step : migrations) {
    if (step.version <= current)
      continue;
    auto operation = "apply migration " + std::to_string(step.version);
    write_transaction transaction(db, operation);
    // The version is re-read under the write lock: another process may have migrated meanwhile.
    if (recorded_schema_version(db) >= step.version)
      continue;
    execute(db, std::string(step.sqlite).c_str(), operation);
    statement record(db, "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                     operation);
    record.bind(1, step.version).bind(2, unix_now()).step();
    transaction.commit();
  }
}

std::optional<key_record> select_key(sqlite3* db, std::string_view where, auto bind_value,
                                     std::string_view operation) {
  statement query(db, fmt::format("SELECT {} FROM caller_keys WHERE {}", key_columns, where),
                  operation);
  query.bind(1, bind_value);
  if (!query.step())
    return std::nullopt;
  return key_from(query);
}

key_record insert_key(sqlite3* db, std::string_view name, std::string_view public_id,
                      std::string_view secret_hash, const key_limits& limits,
                      std::string_view operation) {
  key_record k;
  k.name = name;
  k.public_id = public_id;
  k.secret_hash = secret_hash;
  k.created_at = unix_now();
  k.limits = limits;
  statement insert(db,
                   "INSERT INTO caller_keys (name, public_id, secret_hash, created_at,"
                   " requests_per_minute, tokens_per_minute, tokens_per_day)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                   operation);
  insert.bind(1, name).bind(2, public_id).bind(3, secret_hash).bind(4, k.created_at);
  insert.bind(5, limits.requests_per_minute).bind(6, limits.tokens_per_minute);
  insert.bind(7, limits.tokens_per_day).step();
  k.id = sqlite3_last_insert_rowid(db);
  return k;
}

} // namespace

void sqlite_store::connection_closer::operator()(sqlite3* db) const {
  sqlite3_close_v2(db);
}

void sqlite_store::open(int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(database_file_.c_str(), &raw,
                           flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
  db_.reset(raw); // sqlite hands back a handle even on failure, and it must be closed
  if (rc != SQLITE_OK)
    throw storage_error("sqlite_store: cannot open " + database_file_.string() + ": " +
                        (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  sqlite3_busy_timeout(db_.get(), busy_timeout_ms);
}

sqlite_store::sqlite_store(const std::filesystem::path& database_file)
    : database_file_(database_file) {
  create_parent_directory(database_file_);
  create_owner_only_file(database_file_);
  open(SQLITE_OPEN_READWRITE);
  auto journal_mode = single_text_row(db_.get(), "PRAGMA journal_mode=WAL", "enable WAL");
  if (journal_mode != "wal")
    throw storage_error("sqlite_store: " + database_file_.string() +
                        " refuses WAL journaling (got '" + journal_mode + "')");
  // FULL fsyncs the WAL on every commit: an acknowledged key change survives power loss too.
  execute(db_.get(), "PRAGMA synchronous=FULL", "set synchronous");
  execute(db_.get(), "PRAGMA foreign_keys=ON", "enable foreign keys");
  migrate(db_.get(), database_file_);
}

sqlite_store::sqlite_store(read_only_t, const std::filesystem::path& database_file)
    : database_file_(database_file) {
  auto refuse = [&](std::string_view why) {
    throw storage_error("sqlite_store: " + database_file_.string() + " " + std::string{why});
  };
  struct stat st {};
  if (::stat(database_file_.c_str(), &st) != 0)
    fail_errno("cannot read", database_file_);
  if (!S_ISREG(st.st_mode))
    refuse("is not a regular file");
  // SQLite takes an empty file for an empty database.
  if (st.st_size == 0)
    refuse("is empty, not an emr store");
  open(SQLITE_OPEN_READONLY);
  auto operation = "read " + database_file_.string();
  if (single_text_row(db_.get(),
                      "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                      " AND name = 'schema_migrations'",
                      operation) == "0")
    refuse("is an SQLite database but not an emr store");
  auto version = recorded_schema_version(db_.get());
  check_known(version, database_file_);
  if (version == latest_schema_version)
    return;
  // Older: the queries want today's columns, which the file may not be changed to hold.
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<sqlite3, connection_closer> copy{raw};
  if (rc != SQLITE_OK)
    throw storage_error("sqlite_store: cannot open a copy in memory: " +
                        std::string{sqlite3_errstr(rc)});
  auto backup = sqlite3_backup_init(copy.get(), "main", db_.get(), "main");
  if (!backup)
    fail(copy.get(), "copy " + database_file_.string());
  sqlite3_backup_step(backup, -1);
  if (sqlite3_backup_finish(backup) != SQLITE_OK)
    fail(copy.get(), "copy " + database_file_.string());
  db_ = std::move(copy);
  migrate(db_.get(), database_file_);
}

sqlite_store::~sqlite_store() = default;

bool sqlite_store::add_provider(const provider_record& p) {
  std::lock_guard lock(mutex_);
  statement insert(db_.get(),
                   fmt::format("INSERT INTO providers ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                               "?8, ?9, ?10) ON CONFLICT (name) DO NOTHING",
                               provider_columns),
                   "add provider");
  insert.bind(1, p.name)
      .bind(2, p.type)
      .bind(3, p.endpoint)
      .bind(4, p.model)
      .bind(5, p.api_key_env)
      .bind(6, std::int64_t{p.max_batch})
      .bind(7, std::int64_t{p.enabled ? 1 : 0})
      .bind(8, p.created_at != 0 ? p.created_at : unix_now())
      .bind(9, p.requests_per_minute)
      .bind(10, p.tokens_per_minute)
      .step();
  return sqlite3_changes(db_.get()) == 1;
}

std::vector<provider_record> sqlite_store::providers() {
  std::lock_guard lock(mutex_);
  statement query(db_.get(),
                  fmt::format("SELECT {} FROM providers ORDER BY name", provider_columns),
                  "list providers");
  std::vector<provider_record> result;
  while (query.step())
    result.push_back(provider_from(query));
  return result;
}

std::optional<provider_record> sqlite_store::provider(std::string_view name) {
  std::lock_guard lock(mutex_);
  statement query(db_.get(),
                  fmt::format("SELECT {} FROM providers WHERE name = ?1", provider_columns),
                  "read provider");
  query.bind(1, name);
  if (!query.step())
    return std::nullopt;
  return provider_from(query);
}

bool sqlite_store::update_provider(const provider_record& p) {
  std::lock_guard lock(mutex_);
  statement update(db_.get(),
                   "UPDATE providers SET type = ?2, endpoint = ?3, model = ?4, api_key_env = ?5,"
                   " max_batch = ?6, enabled = ?7, requests_per_minute = ?8,"
                   " tokens_per_minute = ?9 WHERE name = ?1",
                   "update provider");
  update.bind(1, p.name)
      .bind(2, p.type)
      .bind(3, p.endpoint)
      .bind(4, p.model)
      .bind(5, p.api_key_env)
      .bind(6, std::int64_t{p.max_batch})
      .bind(7, std::int64_t{p.enabled ? 1 : 0})
      .bind(8, p.requests_per_minute)
      .bind(9, p.tokens_per_minute)
      .step();
  return sqlite3_changes(db_.get()) == 1;
}

bool sqlite_store::remove_provider(std::string_view name) {
  std::lock_guard lock(mutex_);
  statement remove(db_.get(), "DELETE FROM providers WHERE name = ?1", "remove provider");
  remove.bind(1, name).step();
  return sqlite3_changes(db_.get()) == 1;
}

key_record sqlite_store::create_key(std::string_view name, std::string_view public_id,
                                    std::string_view secret_hash, const key_limits& limits) {
  std::lock_guard lock(mutex_);
  return insert_key(db_.get(), name, public_id, secret_hash, limits, "create key");
}

std::vector<key_record> sqlite_store::keys() {
  std::lock_guard lock(mutex_);
  statement query(db_.get(), fmt::format("SELECT {} FROM caller_keys ORDER BY id", key_columns),
                  "list keys");
  std::vector<key_record> result;
  while (query.step())
    result.push_back(key_from(query));
  return result;
}

std::optional<key_record> sqlite_store::key_by_public_id(std::string_view public_id) {
  std::lock_guard lock(mutex_);
  return select_key(db_.get(), "public_id = ?1", public_id, "read key by public id");
}

std::optional<key_record> sqlite_store::key(std::int64_t id) {
  std::lock_guard lock(mutex_);
  return select_key(db_.get(), "id = ?1", id, "read key");
}

bool sqlite_store::revoke_key(std::int64_t id) {
  std::lock_guard lock(mutex_);
  statement revoke(db_.get(),
                   "UPDATE caller_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                   "revoke key");
  revoke.bind(1, id).bind(2, unix_now()).step();
  return sqlite3_changes(db_.get()) == 1;
}

std::optional<key_record> sqlite_store::rotate_key(std::int64_t id, std::string_view new_public_id,
                                                   std::string_view new_secret_hash) {
  std::lock_guard lock(mutex_);
  constexpr std::string_view operation = "rotate key";
  write_transaction transaction(db_.get(), operation);
  auto old_key = select_key(db_.get(), "id = ?1", id, operation);
  if (!old_key || old_key->revoked_at)
    return std::nullopt;
  statement revoke(db_.get(), "UPDATE caller_keys SET revoked_at = ?2 WHERE id = ?1", operation);
  revoke.bind(1, id).bind(2, unix_now()).step();
  auto new_key = insert_key(db_.get(), old_key->name, new_public_id, new_secret_hash,
                            old_key->limits, operation);
  transaction.commit();
  return new_key;
}

void sqlite_store::touch_keys(
    const std::vector<std::pair<std::int64_t, std::int64_t>>& id_and_time) {
  if (id_and_time.empty())
    return;
  std::lock_guard lock(mutex_);
  constexpr std::string_view operation = "touch keys";
  write_transaction transaction(db_.get(), operation);
  statement touch(db_.get(),
                  "UPDATE caller_keys SET last_used_at = ?2"
                  " WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
                  operation);
  for (const auto& [id, time] : id_and_time) {
    touch.bind(1, id).bind(2, time).step();
    touch.reset();
  }
  transaction.commit();
}

bool sqlite_store::set_key_limits(std::int64_t id, const key_limits& limits) {
  std::lock_guard lock(mutex_);
  statement update(db_.get(),
                   "UPDATE caller_keys SET requests_per_minute = ?2, tokens_per_minute = ?3,"
                   " tokens_per_day = ?4 WHERE id = ?1 AND revoked_at IS NULL",
                   "set key limits");
  update.bind(1, id).bind(2, limits.requests_per_minute).bind(3, limits.tokens_per_minute);
  update.bind(4, limits.tokens_per_day).step();
  return sqlite3_changes(db_.get()) == 1;
}

void sqlite_store::add_key_usage(const std::vector<key_usage_row>& rows) {
  if (rows.empty())
    return;
  std::lock_guard lock(mutex_);
  constexpr std::string_view operation = "record key usage";
  write_transaction transaction(db_.get(), operation);
  statement add(db_.get(),
                "INSERT INTO key_usage (key_id, day, requests, texts, tokens, upstream_texts,"
                " upstream_calls, cache_hits, errors) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                " ON CONFLICT (key_id, day) DO UPDATE SET"
                " requests = requests + excluded.requests, texts = texts + excluded.texts,"
                " tokens = tokens + excluded.tokens,"
                " upstream_texts = upstream_texts + excluded.upstream_texts,"
                " upstream_calls = upstream_calls + excluded.upstream_calls,"
                " cache_hits = cache_hits + excluded.cache_hits, errors = errors + excluded.errors",
                operation);
  for (const auto& r : rows) {
    add.bind(1, r.key_id).bind(2, r.day).bind(3, r.requests).bind(4, r.texts).bind(5, r.tokens);
    add.bind(6, r.upstream_texts).bind(7, r.upstream_calls).bind(8, r.cache_hits);
    add.bind(9, r.errors).step();
    add.reset();
  }
  transaction.commit();
}

std::vector<key_usage_row> sqlite_store::key_usage(std::int64_t key_id, std::int64_t from_day) {
  std::lock_guard lock(mutex_);
  statement query(db_.get(),
                  "SELECT day, requests, texts, tokens, upstream_texts, upstream_calls, cache_hits,"
                  " errors FROM key_usage WHERE key_id = ?1 AND day >= ?2 ORDER BY day",
                  "read key usage");
  query.bind(1, key_id).bind(2, from_day);
  std::vector<key_usage_row> rows;
  while (query.step())
    rows.push_back(key_usage_row{key_id, query.integer(0), query.integer(1), query.integer(2),
                                 query.integer(3), query.integer(4), query.real(5),
                                 query.integer(6), query.integer(7)});
  return rows;
}

void sqlite_store::put_cached_vectors(const std::vector<stored_vector>& vectors) {
  if (vectors.empty())
    return;
  std::lock_guard lock(mutex_);
  constexpr std::string_view operation = "keep cached vectors";
  write_transaction transaction(db_.get(), operation);
  statement put(db_.get(),
                "INSERT INTO cached_vectors (key, tokens, expires_at, vector)"
                " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO UPDATE SET"
                " tokens = excluded.tokens, expires_at = excluded.expires_at,"
                " vector = excluded.vector",
                operation);
  for (const auto& v : vectors) {
    put.bind(1, v.key).bind(2, v.tokens).bind(3, v.expires_at).bind(4, v.values).step();
    put.reset();
  }
  transaction.commit();
}

std::vector<stored_vector> sqlite_store::cached_vectors(const std::vector<std::string>& keys,
                                                        std::int64_t now) {
  std::vector<stored_vector> found;
  if (keys.empty())
    return found;
  std::lock_guard lock(mutex_);
  // In-process, one lookup by primary key a text costs less than building an IN list.
  statement query(db_.get(),
                  "SELECT tokens, expires_at, vector FROM cached_vectors"
                  " WHERE key = ?1 AND expires_at > ?2",
                  "read cached vectors");
  for (const auto& key : keys) {
    query.bind(1, key).bind(2, now);
    if (query.step())
      found.push_back(stored_vector{key, query.floats(2), query.integer(0), query.integer(1)});
    query.reset();
  }
  return found;
}

std::int64_t sqlite_store::trim_cached_vectors(std::int64_t now, std::int64_t max_entries) {
  std::lock_guard lock(mutex_);
  constexpr std::string_view operation = "trim cached vectors";
  write_transaction transaction(db_.get(), operation);
  statement expired(db_.get(), "DELETE FROM cached_vectors WHERE expires_at <= ?1", operation);
  expired.bind(1, now).step();
  auto dropped = static_cast<std::int64_t>(sqlite3_changes64(db_.get()));
  statement over(db_.get(),
                 "DELETE FROM cached_vectors WHERE key IN (SELECT key FROM cached_vectors"
                 " ORDER BY expires_at LIMIT max(0, (SELECT count(*) FROM cached_vectors) - ?1))",
                 operation);
  over.bind(1, max_entries).step();
  dropped += static_cast<std::int64_t>(sqlite3_changes64(db_.get()));
  transaction.commit();
  return dropped;
}

std::int64_t sqlite_store::clear_cached_vectors() {
  std::lock_guard lock(mutex_);
  statement clear(db_.get(), "DELETE FROM cached_vectors", "clear cached vectors");
  clear.step();
  return static_cast<std::int64_t>(sqlite3_changes64(db_.get()));
}

std::int64_t sqlite_store::cached_vector_count() {
  std::lock_guard lock(mutex_);
  statement query(db_.get(), "SELECT count(*) FROM cached_vectors", "count cached vectors");
  query.step();
  return query.integer(0);
}

std::int64_t sqlite_store::schema_version() {
  std::lock_guard lock(mutex_);
  return recorded_schema_version(db_.get());
}

std::string sqlite_store::integrity_check() {
  std::lock_guard lock(mutex_);
  statement check(db_.get(), "PRAGMA integrity_check", "integrity check");
  std::string report;
  while (check.step()) {
    if (!report.empty())
      report += '\n';
    report += check.text(0);
  }
  return report;
}

} // namespace emr

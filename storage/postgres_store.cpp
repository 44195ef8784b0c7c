// postgres_store: every value travels as a bound parameter, so names are stored verbatim whatever
// characters they hold; results come back as text and are converted here.

#include "storage/postgres_store.hpp"

#include "storage/migrations.hpp"
#include "storage/postgres_changes.hpp"
#include "storage/postgres_connection.hpp"
#include "storage/record_rows.hpp"

#include <boost/algorithm/hex.hpp>
#include <fmt/format.h>

#include <bit>
#include <cstring>
#include <map>

namespace emr {

namespace {

// The lock under which replicas starting together migrate one database: any constant all agree
// on ("emr_sch").
constexpr std::int64_t migration_lock = 0x656d725f736368;

using pg::checked;
using pg::execute_script;
using pg::parameters;
using pg::result;
using pg::transaction;

static_assert(std::endian::native == std::endian::little, "emr assumes a little-endian host");

// bytea in its text form: \x and the bytes in hex.
void append_bytea(std::string& out, const std::vector<float>& values) {
  out += "\\x";
  auto bytes = reinterpret_cast<const unsigned char*>(values.data());
  boost::algorithm::hex_lower(bytes, bytes + values.size() * sizeof(float),
                              std::back_inserter(out));
}

// From encode(vector, 'hex'), whatever the server's bytea_output.
std::vector<float> floats_of_hex(std::string_view hex) {
  std::string bytes;
  try {
    boost::algorithm::unhex(hex.begin(), hex.end(), std::back_inserter(bytes));
  } catch (const boost::algorithm::hex_decode_error&) {
    throw storage_error("postgres_store: a cached vector is not hex");
  }
  std::vector<float> out(bytes.size() / sizeof(float));
  if (!out.empty())
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

// A PostgreSQL array literal, built element by element: a $n::type[] parameter carries many rows
// in one statement. Elements go in as given, so they must need no quoting or come quoted.
class array_literal {
public:
  array_literal& add(std::string_view element) {
    if (text_.size() > 1)
      text_ += ',';
    text_ += element;
    return *this;
  }
  std::string text() const { return text_ + "}"; }

private:
  std::string text_ = "{";
};

// Rows a statement carries at most, so that no statement's text grows without bound.
constexpr std::size_t rows_a_statement = 256;

std::int64_t recorded_schema_version(pg::connection& db) {
  return checked(db, "SELECT coalesce(max(version), 0) FROM schema_migrations",
                 "read schema version")
      .integer(0, 0);
}

void migrate(pg::connection& db, const std::string& where) {
  transaction t(db, "migrate");
  // Replicas starting together queue here; each then sees what the one before it applied.
  checked(db, "SELECT pg_advisory_xact_lock($1)", "lock for migration",
          parameters{}.integer(migration_lock));
  checked(db,
          "CREATE TABLE IF NOT EXISTS schema_migrations"
          " (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
          "create schema_migrations");
  auto current = recorded_schema_version(db);
  if (current > latest_schema_version)
    throw storage_error("postgres_store: " + where + " has schema version " +
                        std::to_string(current) + " but this emr knows only up to " +
                        std::to_string(latest_schema_version) + "; upgrade emr");
  for (const auto& step : migrations) {
    if (step.version <= current)
      continue;
    auto operation = "apply migration " + std::to_string(step.version);
    execute_script(db, step.postgresql, operation);
    checked(db, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", operation,
            parameters{}.integer(step.version).integer(unix_now()));
  }
  t.commit();
}

/// One row of a result, as record_rows.hpp reads rows.
struct row {
  const result& r;
  int index;
  std::string text(int column) const { return r.text(index, column); }
  std::int64_t integer(int column) const { return r.integer(index, column); }
  std::optional<std::int64_t> optional_integer(int column) const {
    return r.optional_integer(index, column);
  }
};

/// A provider's fields but created_at, as $1 to $9 of both add and update.
parameters provider_parameters(const provider_record& p) {
  return std::move(parameters{}
                       .text(p.name)
                       .text(p.type)
                       .text(p.endpoint)
                       .text(p.model)
                       .text(p.api_key_env)
                       .integer(p.max_batch)
                       .integer(p.enabled ? 1 : 0)
                       .integer(p.requests_per_minute)
                       .integer(p.tokens_per_minute));
}

std::optional<key_record> select_key(pg::connection& db, std::string_view where,
                                     const parameters& params, std::string_view operation) {
  auto r = checked(db, fmt::format("SELECT {} FROM caller_keys WHERE {}", key_columns, where),
                   operation, params);
  if (r.rows() == 0)
    return std::nullopt;
  return key_from(row{r, 0});
}

key_record insert_key(pg::connection& db, std::string_view name, std::string_view public_id,
                      std::string_view secret_hash, const key_limits& limits,
                      std::string_view operation) {
  key_record k;
  k.name = name;
  k.public_id = public_id;
  k.secret_hash = secret_hash;
  k.created_at = unix_now();
  k.limits = limits;
  k.id = checked(db,
                 "INSERT INTO caller_keys (name, public_id, secret_hash, created_at,"
                 " requests_per_minute, tokens_per_minute, tokens_per_day)"
                 " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                 operation,
                 parameters{}
                     .text(name)
                     .text(public_id)
                     .text(secret_hash)
                     .integer(k.created_at)
                     .integer(limits.requests_per_minute)
                     .integer(limits.tokens_per_minute)
                     .integer(limits.tokens_per_day))
             .integer(0, 0);
  return k;
}

/// Tells every replica's postgres_changes that `topic` changed; within a transaction, at its
/// commit.
void announce(pg::connection& db, change_topic topic) {
  checked(db, "SELECT pg_notify($1, $2)", "announce the change",
          parameters{}.text(change_channel).text(topic_name(topic)));
}

/// `changed`, announced when true.
bool announced(pg::connection& db, bool changed, change_topic topic) {
  if (changed)
    announce(db, topic);
  return changed;
}

} // namespace

// Migrations run once, at start, on a connection of their own: a replica may wait there for
// another's migration (the advisory lock), and a step may rebuild a large table, neither of which
// the deadline callers are held to would allow.
constexpr int migration_deadline_s = 600;

postgres_store::postgres_store(std::string url, int deadline_s, std::string options)
    : db_(url, deadline_s, std::move(options)) {
  pg::connection setup(std::move(url), migration_deadline_s);
  migrate(setup, setup.where());
}

postgres_store::~postgres_store() = default;

pg::connection& postgres_store::connection(std::unique_lock<std::mutex>& lock) {
  auto asked_at = pg::connection::clock::now();
  lock = std::unique_lock{mutex_};
  return db_.open(asked_at);
}

bool postgres_store::add_provider(const provider_record& p) {
  std::unique_lock<std::mutex> lock;
  auto& db = connection(lock);
  return announced(
      db,
      checked(db,
              "INSERT INTO providers (name, type, endpoint, model, api_key_env, max_batch,"
              " enabled, requests_per_minute, tokens_per_minute, created_at)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (name) DO NOTHING",
              "add provider",
              provider_parameters(p).integer(p.created_at != 0 ? p.created_at : unix_now()))
              .changed() == 1,
      change_topic::providers);
}

std::vector<provider_record> postgres_store::providers() {
  std::unique_lock<std::mutex> lock;
  auto r = checked(connection(lock),
                   fmt::format("SELECT {} FROM providers ORDER BY name", provider_columns),
                   "list providers");
  std::vector<provider_record> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back(provider_from(row{r, i}));
  return out;
}

std::optional<provider_record> postgres_store::provider(std::string_view name) {
  std::unique_lock<std::mutex> lock;
  auto r = checked(connection(lock),
                   fmt::format("SELECT {} FROM providers WHERE name = $1", provider_columns),
                   "read provider", parameters{}.text(name));
  if (r.rows() == 0)
    return std::nullopt;
  return provider_from(row{r, 0});
}

bool postgres_store::update_provider(const provider_record& p) {
  std::unique_lock<std::mutex> lock;
  auto& db = connection(lock);
  return announced(
      db,
      checked(db,
              "UPDATE providers SET type = $2, endpoint = $3, model = $4, api_key_env = $5,"
              " max_batch = $6, enabled = $7, requests_per_minute = $8,"
              " tokens_per_minute = $9 WHERE name = $1",
              "update provider", provider_parameters(p))
              .changed() == 1,
      change_topic::providers);
}

bool postgres_store::remove_provider(std::string_view name) {
  std::unique_lock<std::mutex> lock;
  auto& db = connection(lock);
  return announced(db,
                   checked(db, "DELETE FROM providers WHERE name = $1", "remove provider",
                           parameters{}.text(name))
                           .changed() == 1,
                   change_topic::providers);
}

key_record postgres_store::create_key(std::string_view name, std::string_view public_id,
                                      std::string_view secret_hash, const key_limits& limits) {
  std::unique_lock<std::mutex> lock;
  auto& db = connection(lock);
  // Other replicas find a new key in the store at its first use; its limits they must hear of,
  // or they would admit it without them. The notice goes out as the key is committed.
  constexpr std::string_view operation = "create key";
  transaction t(db, operation);
  auto record = insert_key(db, name, public_id, secret_hash, limits, operation);
  if (limits != key_limits{})
    announce(db, change_topic::keys);
  t.commit();
  return record;
}

std::vector<key_record> postgres_store::keys() {
  std::unique_lock<std::mutex> lock;
  auto r = checked(connection(lock),
                   fmt::format("SELECT {} FROM caller_keys ORDER BY id", key_columns), "list keys");
  std::vector<key_record> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back(key_from(row{r, i}));
  return out;
}

std::optional<key_record> postgres_store::key_by_public_id(std::string_view public_id) {
  std::unique_lock<std::mutex> lock;
  return select_key(connection(lock), "public_id = $1", parameters{}.text(public_id),
                    "read key by public id");
}

std::optional<key_record> postgres_store::key(std::int64_t id) {
  std::unique_lock<std::mutex> lock;
  return select_key(connection(lock), "id = $1", parameters{}.integer(id), "read key");
}

bool postgres_store::revoke_key(std::int64_t id) {
  std::unique_lock<std::mutex> lock;
  auto& db = connection(lock);
  return announced(
      db,
      checked(db, "UPDATE caller_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
              "revoke key", parameters{}.integer(id).integer(unix_now()))
              .changed() == 1,
      change_topic::keys);
}

bool postgres_store::set_key_limits(std::int64_t id, const key_limits& limits) {
  std::unique_lock<std::mutex> lock;
  auto& db = connection(lock);
  return announced(
      db,
      checked(db,
              "UPDATE caller_keys SET requests_per_minute = $2, tokens_per_minute = $3,"
              " tokens_per_day = $4 WHERE id = $1 AND revoked_at IS NULL",
              "set key limits",
              parameters{}
                  .integer(id)
                  .integer(limits.requests_per_minute)
                  .integer(limits.tokens_per_minute)
                  .integer(limits.tokens_per_day))
              .changed() == 1,
      change_topic::keys);
}

std::optional<key_record> postgres_store::rotate_key(std::int64_t id,
                                                     std::string_view new_public_id,
                                                     std::string_view new_secret_hash) {
  std::unique_lock<std::mutex> lock;
  constexpr std::string_view operation = "rotate key";
  auto& db = connection(lock);
  transaction t(db, operation);
  // FOR UPDATE: a replica rotating or revoking the same key at once waits for this one.
  auto old_key = select_key(db, "id = $1 FOR UPDATE", parameters{}.integer(id), operation);
  if (!old_key || old_key->revoked_at)
    return std::nullopt;
  checked(db, "UPDATE caller_keys SET revoked_at = $2 WHERE id = $1", operation,
          parameters{}.integer(id).integer(unix_now()));
  auto new_key =
      insert_key(db, old_key->name, new_public_id, new_secret_hash, old_key->limits, operation);
  announce(db, change_topic::keys);
  t.commit();
  return new_key;
}

void postgres_store::touch_keys(
    const std::vector<std::pair<std::int64_t, std::int64_t>>& id_and_time) {
  if (id_and_time.empty())
    return;
  array_literal ids, times;
  for (const auto& [id, time] : id_and_time) {
    ids.add(std::to_string(id));
    times.add(std::to_string(time));
  }
  std::unique_lock<std::mutex> lock;
  // One statement for the whole batch; a key named twice keeps its latest time.
  checked(connection(lock),
          "UPDATE caller_keys AS k SET last_used_at = t.at"
          " FROM (SELECT id, max(at) AS at FROM unnest($1::bigint[], $2::bigint[]) AS u(id, at)"
          "       GROUP BY id) AS t"
          " WHERE k.id = t.id AND (k.last_used_at IS NULL OR k.last_used_at < t.at)",
          "touch keys", parameters{}.text(ids.text()).text(times.text()));
}

void postgres_store::add_key_usage(const std::vector<key_usage_row>& rows) {
  if (rows.empty())
    return;
  std::unique_lock<std::mutex> lock;
  constexpr std::string_view operation = "record key usage";
  auto& db = connection(lock);
  transaction t(db, operation);
  for (const auto& r : rows)
    checked(db,
            "INSERT INTO key_usage (key_id, day, requests, texts, tokens, upstream_texts,"
            " upstream_calls, cache_hits, errors) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (key_id, day) DO UPDATE SET"
            " requests = key_usage.requests + excluded.requests,"
            " texts = key_usage.texts + excluded.texts,"
            " tokens = key_usage.tokens + excluded.tokens,"
            " upstream_texts = key_usage.upstream_texts + excluded.upstream_texts,"
            " upstream_calls = key_usage.upstream_calls + excluded.upstream_calls,"
            " cache_hits = key_usage.cache_hits + excluded.cache_hits,"
            " errors = key_usage.errors + excluded.errors",
            operation,
            parameters{}
                .integer(r.key_id)
                .integer(r.day)
                .integer(r.requests)
                .integer(r.texts)
                .integer(r.tokens)
                .integer(r.upstream_texts)
                .real(r.upstream_calls)
                .integer(r.cache_hits)
                .integer(r.errors));
  t.commit();
}

std::vector<key_usage_row> postgres_store::key_usage(std::int64_t key_id, std::int64_t from_day) {
  std::unique_lock<std::mutex> lock;
  auto r = checked(connection(lock),
                   "SELECT day, requests, texts, tokens, upstream_texts, upstream_calls,"
                   " cache_hits, errors FROM key_usage WHERE key_id = $1 AND day >= $2"
                   " ORDER BY day",
                   "read key usage", parameters{}.integer(key_id).integer(from_day));
  std::vector<key_usage_row> rows;
  for (int i = 0; i < r.rows(); ++i)
    rows.push_back(key_usage_row{key_id, r.integer(i, 0), r.integer(i, 1), r.integer(i, 2),
                                 r.integer(i, 3), r.integer(i, 4), r.real(i, 5), r.integer(i, 6),
                                 r.integer(i, 7)});
  return rows;
}

void postgres_store::import(const std::vector<provider_record>& providers,
                            const std::vector<key_record>& keys) {
  std::unique_lock<std::mutex> lock;
  constexpr std::string_view operation = "import";
  auto& db = connection(lock);
  transaction t(db, operation);
  // Nobody writes between the count and the copy: the tables are locked until the commit.
  checked(db, "LOCK TABLE providers, caller_keys IN EXCLUSIVE MODE", operation);
  auto held =
      checked(db, "SELECT (SELECT count(*) FROM providers) + (SELECT count(*) FROM caller_keys)",
              operation)
          .integer(0, 0);
  if (held != 0)
    throw storage_error("postgres_store: " + db_.where() + " already holds " +
                        std::to_string(held) + " providers and keys; copy into an empty database");
  for (const auto& p : providers)
    checked(db,
            "INSERT INTO providers (name, type, endpoint, model, api_key_env, max_batch, enabled,"
            " requests_per_minute, tokens_per_minute, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            operation, provider_parameters(p).integer(p.created_at));
  for (const auto& k : keys) {
    parameters values;
    values.integer(k.id).text(k.name).text(k.public_id).text(k.secret_hash).integer(k.created_at);
    // NULL stays NULL: an empty text parameter would not.
    auto optional = [](const std::optional<std::int64_t>& v) {
      return v ? std::to_string(*v) : std::string{};
    };
    values.text(optional(k.last_used_at)).text(optional(k.revoked_at));
    values.integer(k.limits.requests_per_minute).integer(k.limits.tokens_per_minute);
    values.integer(k.limits.tokens_per_day);
    checked(db,
            "INSERT INTO caller_keys (id, name, public_id, secret_hash, created_at, last_used_at,"
            " revoked_at, requests_per_minute, tokens_per_minute, tokens_per_day)"
            " VALUES ($1, $2, $3, $4, $5, NULLIF($6, '')::bigint, NULLIF($7, '')::bigint, $8,"
            " $9, $10)",
            operation, values);
  }
  // New keys are numbered after the copied ones.
  checked(db,
          "SELECT setval(pg_get_serial_sequence('caller_keys', 'id'),"
          " coalesce((SELECT max(id) FROM caller_keys), 0) + 1, false)",
          operation);
  announce(db, change_topic::providers);
  announce(db, change_topic::keys);
  t.commit();
}

void postgres_store::put_cached_vectors(const std::vector<stored_vector>& vectors) {
  if (vectors.empty())
    return;
  // One statement may not touch a row twice (a text embedded twice in a second is), and replicas
  // writing the same keys in different orders could deadlock: each key once, the last given, in
  // key order.
  std::map<std::string_view, const stored_vector*> by_key;
  for (const auto& v : vectors)
    by_key[v.key] = &v;
  std::vector<const stored_vector*> rows;
  rows.reserve(by_key.size());
  for (const auto& [key, v] : by_key)
    rows.push_back(v);
  std::unique_lock<std::mutex> lock;
  constexpr std::string_view operation = "keep cached vectors";
  auto& db = connection(lock);
  transaction t(db, operation);
  for (std::size_t first = 0; first < rows.size(); first += rows_a_statement) {
    auto last = std::min(rows.size(), first + rows_a_statement);
    array_literal keys, tokens, expiries, values;
    for (auto i = first; i < last; ++i) {
      const auto& v = *rows[i];
      keys.add(v.key);
      tokens.add(std::to_string(v.tokens));
      expiries.add(std::to_string(v.expires_at));
      // Inside a quoted array element a backslash escapes the next one: \\x reads as \x.
      std::string value = "\"\\";
      append_bytea(value, v.values);
      values.add(value + '"');
    }
    // Two replicas may keep one text at once: the later write wins, and either is the vector.
    checked(db,
            "INSERT INTO cached_vectors (key, tokens, expires_at, vector)"
            " SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bytea[])"
            " ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens,"
            " expires_at = excluded.expires_at, vector = excluded.vector",
            operation,
            parameters{}
                .text(keys.text())
                .text(tokens.text())
                .text(expiries.text())
                .text(values.text()));
  }
  t.commit();
}

std::vector<stored_vector> postgres_store::cached_vectors(const std::vector<std::string>& keys,
                                                          std::int64_t now) {
  std::vector<stored_vector> found;
  if (keys.empty())
    return found;
  std::unique_lock<std::mutex> lock;
  auto& db = connection(lock);
  for (std::size_t first = 0; first < keys.size(); first += rows_a_statement) {
    array_literal wanted;
    for (auto i = first; i < std::min(keys.size(), first + rows_a_statement); ++i)
      wanted.add(keys[i]);
    auto r = checked(db,
                     "SELECT key, tokens, expires_at, encode(vector, 'hex') FROM cached_vectors"
                     " WHERE key = ANY($1::text[]) AND expires_at > $2",
                     "read cached vectors", parameters{}.text(wanted.text()).integer(now));
    for (int i = 0; i < r.rows(); ++i)
      found.push_back(stored_vector{r.text(i, 0), floats_of_hex(r.text(i, 3)), r.integer(i, 1),
                                    r.integer(i, 2)});
  }
  return found;
}

std::int64_t postgres_store::trim_cached_vectors(std::int64_t now, std::int64_t max_entries) {
  std::unique_lock<std::mutex> lock;
  constexpr std::string_view operation = "trim cached vectors";
  auto& db = connection(lock);
  transaction t(db, operation);
  auto dropped = checked(db, "DELETE FROM cached_vectors WHERE expires_at <= $1", operation,
                         parameters{}.integer(now))
                     .changed();
  dropped += checked(db,
                     "DELETE FROM cached_vectors WHERE key IN (SELECT key FROM cached_vectors"
                     " ORDER BY expires_at LIMIT greatest(0, (SELECT count(*) FROM"
                     " cached_vectors) - $1))",
                     operation, parameters{}.integer(max_entries))
                 .changed();
  t.commit();
  return dropped;
}

std::int64_t postgres_store::clear_cached_vectors() {
  std::unique_lock<std::mutex> lock;
  return checked(connection(lock), "DELETE FROM cached_vectors", "clear cached vectors").changed();
}

std::int64_t postgres_store::cached_vector_count() {
  std::unique_lock<std::mutex> lock;
  return checked(connection(lock), "SELECT count(*) FROM cached_vectors", "count cached vectors")
      .integer(0, 0);
}

std::int64_t postgres_store::schema_version() {
  std::unique_lock<std::mutex> lock;
  return recorded_schema_version(connection(lock));
}

std::string postgres_store::integrity_check() {
  std::unique_lock<std::mutex> lock;
  // PostgreSQL keeps its own pages sound; what can be wrong here is emr's schema: every table
  // and column this build reads must be there.
  try {
    auto& db = connection(lock);
    checked(db, fmt::format("SELECT {} FROM providers LIMIT 0", provider_columns),
            "read providers");
    checked(db, fmt::format("SELECT {} FROM caller_keys LIMIT 0", key_columns), "read keys");
    return "ok";
  } catch (const storage_error& e) {
    return e.what();
  }
}

} // namespace emr

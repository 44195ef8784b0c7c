#pragma once
// The storage interface: what emr persists (providers and caller keys), apart from how.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace emr {

/// An I/O failure, a corrupt database or a schema this build cannot read.
class storage_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// The store's server cannot be reached right now (PostgreSQL down or cut off): a replica keeps
/// serving with what it holds, and writes are refused until it is back.
class store_unavailable : public storage_error {
public:
  using storage_error::storage_error;
};

/// The current time as records keep it: unix seconds.
inline std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// A provider as an operator registered it. The API key's value stays in the environment.
struct provider_record {
  std::string name;
  std::string type;
  std::string endpoint;
  std::string model;
  std::string api_key_env;
  int max_batch = 0; ///< 0 = the type's default
  bool enabled = true;
  /// The provider's limits for this key as the operator knows them; 0 = not set.
  std::int64_t requests_per_minute = 0;
  std::int64_t tokens_per_minute = 0;
  std::int64_t created_at = 0; ///< unix seconds; add_provider stamps the current time when 0

  friend bool operator==(const provider_record&, const provider_record&) = default;
};

/// What a caller key may use; 0 = no limit.
struct key_limits {
  std::int64_t requests_per_minute = 0;
  std::int64_t tokens_per_minute = 0;
  std::int64_t tokens_per_day = 0; ///< a UTC day

  friend bool operator==(const key_limits&, const key_limits&) = default;
};

/// A caller API key. Only the argon2id hash of its secret is ever stored.
struct key_record {
  std::int64_t id = 0;
  std::string name;
  std::string public_id;
  std::string secret_hash;     ///< PHC-encoded argon2id string
  std::int64_t created_at = 0; ///< unix seconds
  std::optional<std::int64_t> last_used_at;
  std::optional<std::int64_t> revoked_at;
  key_limits limits; ///< a rotated key's replacement keeps them

  friend bool operator==(const key_record&, const key_record&) = default;
};

/// What one caller key used on one UTC day. Stored rows only grow: each write adds to them.
struct key_usage_row {
  std::int64_t key_id = 0;
  std::int64_t day = 0; ///< days since 1970-01-01, UTC
  std::int64_t requests = 0;
  std::int64_t texts = 0;
  std::int64_t tokens = 0;         ///< as the answers' usage counted them
  std::int64_t upstream_texts = 0; ///< the key's texts that went to a provider
  double upstream_calls = 0;       ///< its share of the calls they rode, by estimated tokens
  std::int64_t cache_hits = 0;     ///< its texts answered from the embedding cache
  std::int64_t errors = 0;         ///< requests answered with an error after authentication

  friend bool operator==(const key_usage_row&, const key_usage_row&) = default;
};

/// One text's vector as the embedding cache keeps it in the store: shared by the replicas of a
/// fleet and kept across restarts.
struct stored_vector {
  std::string key; ///< the embedding cache's key for it, 64 lowercase hex digits
  std::vector<float> values;
  std::int64_t tokens = 0;     ///< its share of the call that embedded it
  std::int64_t expires_at = 0; ///< unix seconds

  friend bool operator==(const stored_vector&, const stored_vector&) = default;
};

/// Durable state of one emr server. Every method is thread-safe and may block on disk, so call
/// them from HTTP handler threads, never from actor threads. Failures throw storage_error.
class store {
public:
  virtual ~store() = default;

  // -- providers ------------------------------------------------------------

  /// False when a provider with that name already exists.
  virtual bool add_provider(const provider_record&) = 0;
  /// Ordered by name.
  virtual std::vector<provider_record> providers() = 0;
  virtual std::optional<provider_record> provider(std::string_view name) = 0;
  /// Replaces everything but name and created_at; false when no provider has that name.
  virtual bool update_provider(const provider_record&) = 0;
  /// False when no provider has that name.
  virtual bool remove_provider(std::string_view name) = 0;

  // -- caller keys ----------------------------------------------------------

  /// Fills id and created_at; the key has `limits` from its first moment, in the same write.
  /// A public_id that already exists throws storage_error.
  virtual key_record create_key(std::string_view name, std::string_view public_id,
                                std::string_view secret_hash, const key_limits& limits = {}) = 0;
  /// Revoked keys included, ordered by id.
  virtual std::vector<key_record> keys() = 0;
  /// Revoked keys are returned too: the caller decides what revoked_at means.
  virtual std::optional<key_record> key_by_public_id(std::string_view public_id) = 0;
  virtual std::optional<key_record> key(std::int64_t id) = 0;
  /// False when the key does not exist or is already revoked.
  virtual bool revoke_key(std::int64_t id) = 0;
  /// Replaces a key's limits; false when the key does not exist or is revoked.
  virtual bool set_key_limits(std::int64_t id, const key_limits& limits) = 0;
  /// Atomically revokes id and creates a key with the same name, limits and the new credentials.
  /// nullopt (and nothing changed) when id does not exist or is already revoked.
  virtual std::optional<key_record> rotate_key(std::int64_t id, std::string_view new_public_id,
                                               std::string_view new_secret_hash) = 0;
  /// Records last use for many keys in one transaction; a time older than the stored one is
  /// ignored, so batches flushed out of order never move last_used_at backwards.
  virtual void
  touch_keys(const std::vector<std::pair<std::int64_t, std::int64_t>>& id_and_time) = 0;

  // -- usage ----------------------------------------------------------------

  /// Adds each row's counts to the stored row of its key and day, in one transaction.
  virtual void add_key_usage(const std::vector<key_usage_row>& rows) = 0;
  /// One key's rows from `from_day` on, oldest first.
  virtual std::vector<key_usage_row> key_usage(std::int64_t key_id, std::int64_t from_day) = 0;

  // -- embedding cache ------------------------------------------------------

  /// Keeps each vector under its key, replacing one kept before, in one transaction.
  virtual void put_cached_vectors(const std::vector<stored_vector>& vectors) = 0;
  /// The vectors kept under any of `keys` that have not expired by `now` (unix seconds), in no
  /// particular order.
  virtual std::vector<stored_vector> cached_vectors(const std::vector<std::string>& keys,
                                                    std::int64_t now) = 0;
  /// Drops the vectors expired by `now`, then those closest to expiring until at most
  /// `max_entries` are left; returns how many went.
  virtual std::int64_t trim_cached_vectors(std::int64_t now, std::int64_t max_entries) = 0;
  /// Drops every cached vector; returns how many there were.
  virtual std::int64_t clear_cached_vectors() = 0;
  virtual std::int64_t cached_vector_count() = 0;

  // -- health ---------------------------------------------------------------

  /// The highest migration applied.
  virtual std::int64_t schema_version() = 0;
  /// "ok" when the database is sound, otherwise the problems found, one a line.
  virtual std::string integrity_check() = 0;
};

} // namespace emr

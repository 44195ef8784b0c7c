#pragma once
// The store on a PostgreSQL database, which every replica of a fleet shares: the same schema and
// migrations as the SQLite store, applied once however many replicas start together.

#include "storage/postgres_connection.hpp"
#include "storage/store.hpp"

#include <memory>
#include <mutex>
#include <string>

namespace emr {

/// One connection behind one mutex, like the SQLite store: admin writes and batched last-used
/// updates are far below what one connection serves.
class postgres_store final : public store {
public:
  /// `url`: a libpq connection URI or keyword string (postgresql://user:password@host:port/db).
  /// Connects and applies pending migrations. Throws storage_error, without the password.
  /// `deadline_s`, within which every connect and statement is answered or fails as
  /// store_unavailable, and the server `options` (`-c name=value ...`) as for pg::connection.
  explicit postgres_store(std::string url, int deadline_s = 5, std::string options = {});
  ~postgres_store() override;
  postgres_store(const postgres_store&) = delete;
  postgres_store& operator=(const postgres_store&) = delete;

  bool add_provider(const provider_record&) override;
  std::vector<provider_record> providers() override;
  std::optional<provider_record> provider(std::string_view name) override;
  bool update_provider(const provider_record&) override;
  bool remove_provider(std::string_view name) override;

  key_record create_key(std::string_view name, std::string_view public_id,
                        std::string_view secret_hash, const key_limits& limits = {}) override;
  std::vector<key_record> keys() override;
  std::optional<key_record> key_by_public_id(std::string_view public_id) override;
  std::optional<key_record> key(std::int64_t id) override;
  bool revoke_key(std::int64_t id) override;
  std::optional<key_record> rotate_key(std::int64_t id, std::string_view new_public_id,
                                       std::string_view new_secret_hash) override;
  void touch_keys(const std::vector<std::pair<std::int64_t, std::int64_t>>& id_and_time) override;
  void add_key_usage(const std::vector<key_usage_row>& rows) override;
  bool set_key_limits(std::int64_t id, const key_limits& limits) override;
  std::vector<key_usage_row> key_usage(std::int64_t key_id, std::int64_t from_day) override;

  void put_cached_vectors(const std::vector<stored_vector>& vectors) override;
  std::vector<stored_vector> cached_vectors(const std::vector<std::string>& keys,
                                            std::int64_t now) override;
  std::int64_t trim_cached_vectors(std::int64_t now, std::int64_t max_entries) override;
  std::int64_t clear_cached_vectors() override;
  std::int64_t cached_vector_count() override;

  std::int64_t schema_version() override;
  std::string integrity_check() override;

  /// Copies another store's records verbatim (ids, secret hashes, times, revocations), in one
  /// transaction, into this database, which must hold none yet: growing from one box to a fleet.
  /// Throws storage_error, and copies nothing, when it already holds some.
  void import(const std::vector<provider_record>& providers, const std::vector<key_record>& keys);

private:
  /// The connection for one use, reopened when it broke, once this use holds `lock` (taken here):
  /// a use that queued behind one that found the server gone fails at once.
  pg::connection& connection(std::unique_lock<std::mutex>& lock);

  std::mutex mutex_;
  pg::connection db_;
};

} // namespace emr

#pragma once
// The store on one SQLite file: WAL, fsync on every commit, schema migrated at open.

#include "storage/store.hpp"

#include <filesystem>
#include <memory>
#include <mutex>

struct sqlite3;

namespace emr {

/// One connection behind one mutex: the write rate (key admin, batched last-used updates) is far
/// below what a single connection serves, and it keeps every transaction trivially serialized.
class sqlite_store final : public store {
public:
  /// Creates the parent directory (0700) and the file (0600) when missing, narrows an existing
  /// file's mode to 0600, and applies pending migrations. Throws storage_error.
  explicit sqlite_store(const std::filesystem::path& database_file);
  struct read_only_t {};
  static constexpr read_only_t read_only{};
  /// Opens an emr store only to read from it (`emr store migrate`'s source): SQLite's read-only
  /// mode, no chmod and no migration, so the file keeps its bytes and its mode. A store of an older
  /// schema is read through a migrated copy in memory. Throws storage_error when the file is
  /// missing, empty, not SQLite, or not an emr store.
  sqlite_store(read_only_t, const std::filesystem::path& database_file);
  ~sqlite_store() override;
  sqlite_store(const sqlite_store&) = delete;
  sqlite_store& operator=(const sqlite_store&) = delete;

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

private:
  struct connection_closer {
    void operator()(sqlite3*) const;
  };

  /// Opens the connection with `flags` (read-write or read-only); throws storage_error.
  void open(int flags);

  std::mutex mutex_;
  std::filesystem::path database_file_;
  std::unique_ptr<sqlite3, connection_closer> db_;
};

} // namespace emr

#pragma once
// The database schema's history. Append new steps; never edit one that has shipped, because
// databases in the field have already applied it.

#include <array>
#include <cstdint>
#include <string_view>

namespace emr {

/// One schema step, applied once, in its own transaction, in version order.
struct migration {
  std::int64_t version;
  std::string_view sql;
};

inline constexpr std::array migrations{
    migration{1, R"sql(
CREATE TABLE providers (
  name        TEXT PRIMARY KEY,
  type        TEXT NOT NULL,
  endpoint    TEXT NOT NULL,
  model       TEXT NOT NULL,
  api_key_env TEXT NOT NULL,
  max_batch   INTEGER NOT NULL DEFAULT 0,
  enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_at  INTEGER NOT NULL
);
CREATE TABLE caller_keys (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  name         TEXT NOT NULL,
  public_id    TEXT NOT NULL UNIQUE,
  secret_hash  TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at   INTEGER
);
)sql"},
    // The provider's rate limits as the operator knows them; 0 = not set.
    migration{2, R"sql(
ALTER TABLE providers
  ADD COLUMN requests_per_minute INTEGER NOT NULL DEFAULT 0 CHECK (requests_per_minute >= 0);
ALTER TABLE providers
  ADD COLUMN tokens_per_minute INTEGER NOT NULL DEFAULT 0 CHECK (tokens_per_minute >= 0);
)sql"},
};

inline constexpr std::int64_t latest_schema_version = migrations.back().version;

namespace detail {
constexpr bool versions_count_up_from_one() {
  for (std::size_t i = 0; i < migrations.size(); ++i)
    if (migrations[i].version != static_cast<std::int64_t>(i) + 1)
      return false;
  return true;
}
} // namespace detail

// The open-time loop applies "every version above the recorded one", which is only right when
// versions are dense and ordered.
static_assert(detail::versions_count_up_from_one(), "migration versions must be 1, 2, 3, ...");

} // namespace emr

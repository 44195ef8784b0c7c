#pragma once
// How both stores lay records out as rows: the columns they select, in this order, and the
// record read back from such a row. `Row` is a store's row accessor, with text(column),
// integer(column) and optional_integer(column).

#include "storage/store.hpp"

namespace emr {

inline constexpr const char* provider_columns =
    "name, type, endpoint, model, api_key_env, max_batch, enabled, created_at, "
    "requests_per_minute, tokens_per_minute";

template <class Row> provider_record provider_from(const Row& row) {
  provider_record p;
  p.name = row.text(0);
  p.type = row.text(1);
  p.endpoint = row.text(2);
  p.model = row.text(3);
  p.api_key_env = row.text(4);
  p.max_batch = static_cast<int>(row.integer(5));
  p.enabled = row.integer(6) != 0;
  p.created_at = row.integer(7);
  p.requests_per_minute = row.integer(8);
  p.tokens_per_minute = row.integer(9);
  return p;
}

inline constexpr const char* key_columns =
    "id, name, public_id, secret_hash, created_at, last_used_at, revoked_at, "
    "requests_per_minute, tokens_per_minute, tokens_per_day";

template <class Row> key_record key_from(const Row& row) {
  key_record k;
  k.id = row.integer(0);
  k.name = row.text(1);
  k.public_id = row.text(2);
  k.secret_hash = row.text(3);
  k.created_at = row.integer(4);
  k.last_used_at = row.optional_integer(5);
  k.revoked_at = row.optional_integer(6);
  k.limits = {row.integer(7), row.integer(8), row.integer(9)};
  return k;
}

} // namespace emr

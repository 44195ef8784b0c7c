#include "http/stored_cache.hpp"

#include "actors/waiting_scope.hpp"

#include <boost/algorithm/hex.hpp>
#include <spdlog/spdlog.h>

#include <set>

namespace emr {

namespace {

std::string hex_of(const cache_key& key) {
  std::string out;
  out.reserve(2 * key.size());
  boost::algorithm::hex_lower(key.begin(), key.end(), std::back_inserter(out));
  return out;
}

} // namespace

stored_cache::stored_cache(store& db, embedding_cache& memory, std::size_t max_entries,
                           std::chrono::milliseconds save_every,
                           std::function<clock_time()> steady_now,
                           std::function<std::int64_t()> unix_seconds)
    : db_(db), memory_(memory), max_entries_(static_cast<std::int64_t>(max_entries)),
      steady_now_(std::move(steady_now)), unix_now_(std::move(unix_seconds)),
      saver_(std::make_unique<periodic_task>(save_every, [this] { save(); })) {}

stored_cache::~stored_cache() {
  saver_.reset();
  save();
}

void stored_cache::note_failure(std::string_view what, const std::exception& e) {
  memory_.count_store_error();
  std::lock_guard guard{failure_mutex_};
  if (!failed_at_)
    spdlog::warn("embedding cache: cannot {} the store ({}); serving from memory until it answers",
                 what, e.what());
  failed_at_ = steady_now_();
}

bool stored_cache::quiet(clock_time now) {
  std::lock_guard guard{failure_mutex_};
  return failed_at_ && now < *failed_at_ + quiet_after_failure;
}

void stored_cache::warm(const std::vector<caller_job>& jobs) {
  auto now = steady_now_();
  if (quiet(now))
    return;
  // A read of the store, over the network on PostgreSQL: another HTTP thread runs meanwhile.
  waiting_scope waiting;
  std::vector<cache_key> keys;
  std::set<cache_key> asked;
  for (const auto& job : jobs) {
    if (!job.cache.read || job.routes.empty())
      continue;
    auto routes = job.policy == routing_policy::all ? job.routes.size() : 1;
    for (std::size_t r = 0; r < routes; ++r) {
      const auto& route = job.routes[r];
      for (const auto& text : job.texts) {
        auto key =
            make_cache_key(route.cache_scope, route.model, job.input_type, job.dimensions, text);
        if (!memory_.holds(key, now) && asked.insert(key).second)
          keys.push_back(key);
      }
    }
  }
  if (keys.empty())
    return;
  std::vector<std::string> wanted;
  wanted.reserve(keys.size());
  for (const auto& key : keys)
    wanted.push_back(hex_of(key));
  auto unix_now = unix_now_();
  try {
    auto found = db_.cached_vectors(wanted, unix_now);
    for (const auto& row : found) {
      cache_key key;
      if (row.key.size() != 2 * key.size() || row.values.empty())
        continue;
      boost::algorithm::unhex(row.key.begin(), row.key.end(), key.begin());
      memory_.restore(key, row.values, row.tokens,
                      now + std::chrono::seconds{row.expires_at - unix_now});
    }
    std::lock_guard guard{failure_mutex_};
    failed_at_.reset();
  } catch (const std::exception& e) {
    // A store gone, or a row not written by emr: the texts go upstream.
    note_failure("read", e);
  }
}

void stored_cache::save() {
  std::lock_guard guard{saving_};
  auto now = steady_now_();
  auto fresh = memory_.take_unsaved();
  if (quiet(now)) {
    // Kept in memory; only their copies in the store are lost, and counted.
    memory_.count_unsaved_dropped(fresh.size());
    return;
  }
  auto unix_now = unix_now_();
  std::vector<stored_vector> rows;
  rows.reserve(fresh.size());
  for (auto& v : fresh) {
    auto left = std::chrono::ceil<std::chrono::seconds>(v.expires - now).count();
    rows.push_back(stored_vector{hex_of(v.key), std::move(v.values), v.tokens, unix_now + left});
  }
  try {
    db_.put_cached_vectors(rows);
    memory_.count_saved(rows.size());
    if (!trimmed_at_ || now >= *trimmed_at_ + std::chrono::minutes{1}) {
      trimmed_at_ = now;
      db_.trim_cached_vectors(unix_now, max_entries_);
    }
    std::lock_guard failures{failure_mutex_};
    failed_at_.reset();
  } catch (const storage_error& e) {
    memory_.count_unsaved_dropped(rows.size());
    note_failure("write", e);
  }
}

std::int64_t stored_cache::clear() {
  // Under the save lock, and with what waits for it dropped: nothing cleared comes back.
  std::lock_guard guard{saving_};
  memory_.take_unsaved();
  return db_.clear_cached_vectors();
}

std::int64_t stored_cache::entries() {
  return db_.cached_vector_count();
}

} // namespace emr

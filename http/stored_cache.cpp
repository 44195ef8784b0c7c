#include "http/stored_cache.hpp"

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

// Trimming scans the table, so it runs once a minute, not with every save.
constexpr int saves_a_trim = 60;

} // namespace

stored_cache::stored_cache(store& db, embedding_cache& memory, std::size_t max_entries,
                           std::function<clock_time()> steady_now,
                           std::function<std::int64_t()> unix_seconds)
    : db_(db), memory_(memory), max_entries_(static_cast<std::int64_t>(max_entries)),
      steady_now_(std::move(steady_now)), unix_now_(std::move(unix_seconds)),
      saver_(std::make_unique<periodic_task>(std::chrono::seconds{1}, [this] { save(); })) {}

stored_cache::~stored_cache() {
  saver_.reset();
  save();
}

void stored_cache::note_failure(std::string_view what, const std::exception& e) {
  memory_.count_store_error();
  if (!failing_.exchange(true))
    spdlog::warn("embedding cache: cannot {} the store ({}); serving from memory until it answers",
                 what, e.what());
}

void stored_cache::warm(const std::vector<caller_job>& jobs) {
  auto now = steady_now_();
  std::vector<cache_key> keys;
  std::set<cache_key> asked;
  for (const auto& job : jobs) {
    if (!job.cache.read)
      continue;
    for (const auto& route : job.routes)
      for (const auto& text : job.texts) {
        auto key =
            make_cache_key(route.cache_scope, route.model, job.input_type, job.dimensions, text);
        if (!memory_.holds(key, now) && asked.insert(key).second)
          keys.push_back(key);
      }
  }
  if (keys.empty())
    return;
  std::vector<std::string> wanted;
  wanted.reserve(keys.size());
  for (const auto& key : keys)
    wanted.push_back(hex_of(key));
  std::vector<stored_vector> found;
  auto unix_now = unix_now_();
  try {
    found = db_.cached_vectors(wanted, unix_now);
    failing_ = false;
  } catch (const storage_error& e) {
    note_failure("read", e);
    return;
  }
  for (auto& row : found) {
    cache_key key;
    if (row.key.size() != 2 * key.size() || row.values.empty())
      continue;
    boost::algorithm::unhex(row.key.begin(), row.key.end(), key.begin());
    memory_.restore(key, row.values, row.tokens,
                    now + std::chrono::seconds{row.expires_at - unix_now});
  }
}

void stored_cache::save() {
  std::lock_guard guard{saving_};
  auto fresh = memory_.take_unsaved();
  auto now = steady_now_();
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
    if (--saves_until_trim_ <= 0) {
      saves_until_trim_ = saves_a_trim;
      db_.trim_cached_vectors(unix_now, max_entries_);
    }
    failing_ = false;
  } catch (const storage_error& e) {
    // The vectors stay in memory; only their copy in the store is lost.
    note_failure("write", e);
  }
}

std::int64_t stored_cache::clear() {
  return db_.clear_cached_vectors();
}

std::int64_t stored_cache::entries() {
  return db_.cached_vector_count();
}

} // namespace emr

#include "http/key_usage_meter.hpp"

#include "actors/waiting_scope.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace emr {

std::int64_t utc_day(std::int64_t unix_seconds) {
  return unix_seconds >= 0 ? unix_seconds / 86400 : (unix_seconds - 86399) / 86400;
}

std::string day_text(std::int64_t day) {
  std::chrono::year_month_day date{std::chrono::sys_days{std::chrono::days{day}}};
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  return text;
}

void add_counts(key_usage_row& a, const key_usage_row& b) {
  a.requests += b.requests;
  a.texts += b.texts;
  a.tokens += b.tokens;
  a.upstream_texts += b.upstream_texts;
  a.upstream_calls += b.upstream_calls;
  a.cache_hits += b.cache_hits;
  a.errors += b.errors;
}

key_usage_meter::key_usage_meter(store& db, std::function<std::int64_t()> now)
    : db_(db), now_(std::move(now)),
      flusher_(std::make_unique<periodic_task>(std::chrono::seconds{5}, [this] { flush(); })) {}

key_usage_meter::~key_usage_meter() {
  flusher_.reset();
  flush();
}

void key_usage_meter::record(const key_usage_row& use) {
  auto day = utc_day(now_());
  std::lock_guard guard{mutex_};
  auto [row, fresh] = pending_.try_emplace({use.key_id, day});
  if (fresh) {
    row->second.key_id = use.key_id;
    row->second.day = day;
  }
  add_counts(row->second, use);
  auto& total = since_start_[use.key_id];
  total.key_id = use.key_id;
  add_counts(total, use);
}

std::vector<key_usage_row> key_usage_meter::busiest(std::size_t n) const {
  std::vector<key_usage_row> keys;
  {
    std::lock_guard guard{mutex_};
    keys.reserve(since_start_.size());
    for (const auto& [id, total] : since_start_)
      keys.push_back(total);
  }
  std::stable_sort(keys.begin(), keys.end(),
                   [](const auto& a, const auto& b) { return a.requests > b.requests; });
  if (keys.size() <= n)
    return keys;
  key_usage_row others;
  for (auto it = keys.begin() + static_cast<std::ptrdiff_t>(n); it != keys.end(); ++it)
    add_counts(others, *it);
  keys.resize(n);
  keys.push_back(others);
  return keys;
}

void key_usage_meter::flush() {
  std::lock_guard one_at_a_time{flushing_};
  std::map<std::pair<std::int64_t, std::int64_t>, key_usage_row> batch;
  {
    std::lock_guard guard{mutex_};
    batch.swap(pending_);
  }
  if (batch.empty())
    return;
  std::vector<key_usage_row> rows;
  rows.reserve(batch.size());
  for (const auto& [where, row] : batch)
    rows.push_back(row);
  try {
    db_.add_key_usage(rows);
    failed_at_.reset();
  } catch (const std::exception& e) {
    failed_at_ = std::chrono::steady_clock::now();
    spdlog::warn("could not record key usage (kept for the next try): {}", e.what());
    std::lock_guard guard{mutex_};
    for (auto& [where, row] : batch)
      add_counts(pending_.try_emplace(where, key_usage_row{row.key_id, row.day}).first->second,
                 row);
  }
}

std::vector<key_usage_row> key_usage_meter::usage(std::int64_t key_id, std::int64_t from_day) {
  // A flush and a read of the store may hold this thread: another HTTP thread runs meanwhile.
  waiting_scope waiting;
  // Holding the write lock: a flush cannot move counts between pending and stored meanwhile.
  auto asked_at = std::chrono::steady_clock::now();
  std::lock_guard one_at_a_time{flushing_};
  // A flush this read waited for found the store out of reach: asking it again would make the
  // caller wait out the store's deadline a second time.
  if (failed_at_ && *failed_at_ >= asked_at)
    throw store_unavailable("the store did not take the usage written just before this read");
  auto rows = db_.key_usage(key_id, from_day);
  std::lock_guard guard{mutex_};
  for (auto it = pending_.lower_bound({key_id, from_day});
       it != pending_.end() && it->first.first == key_id; ++it) {
    auto at = std::find_if(rows.begin(), rows.end(),
                           [&](const key_usage_row& r) { return r.day == it->second.day; });
    if (at == rows.end())
      rows.insert(
          std::upper_bound(rows.begin(), rows.end(), it->second.day,
                           [](std::int64_t day, const key_usage_row& r) { return day < r.day; }),
          it->second);
    else
      add_counts(*at, it->second);
  }
  return rows;
}

} // namespace emr

#pragma once
// What each caller key uses, counted as its requests are answered and added to the store every
// few seconds (and at shutdown), so that no request waits for a database write.

#include "http/periodic_task.hpp"
#include "storage/store.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

namespace emr {

/// Days since 1970-01-01, UTC.
std::int64_t utc_day(std::int64_t unix_seconds);
/// "YYYY-MM-DD" of a utc_day.
std::string day_text(std::int64_t day);

class key_usage_meter {
public:
  /// `now`: unix seconds (injected by tests).
  explicit key_usage_meter(store& db, std::function<std::int64_t()> now = unix_now);
  /// Stops the flushing thread and writes what is left.
  ~key_usage_meter();
  key_usage_meter(const key_usage_meter&) = delete;
  key_usage_meter& operator=(const key_usage_meter&) = delete;

  /// Adds one answered request's counts to its key's row of today (`use.day` is ignored).
  void record(const key_usage_row& use);
  /// Adds what was counted since the last write to the store. On a store failure the counts are
  /// kept for the next try, never lost or counted twice.
  void flush();
  /// The key's use from `from_day` on, oldest first: the store's rows with what is not written
  /// yet added in. store_unavailable, without asking the store again, when the flush it waited
  /// for could not write.
  std::vector<key_usage_row> usage(std::int64_t key_id, std::int64_t from_day);
  /// Since start: the `n` keys with the most requests, and the others' sum (key_id 0) when there
  /// are others, for a per-key metric label that cannot grow without bound.
  std::vector<key_usage_row> busiest(std::size_t n) const;

private:
  store& db_;
  std::function<std::int64_t()> now_;
  mutable std::mutex mutex_;
  std::map<std::pair<std::int64_t, std::int64_t>, key_usage_row> pending_; ///< by (key, day)
  std::map<std::int64_t, key_usage_row> since_start_;
  std::mutex flushing_; ///< one write at a time, so rows are never added twice
  std::optional<std::chrono::steady_clock::time_point> failed_at_; ///< under flushing_
  std::unique_ptr<periodic_task> flusher_; ///< stopped first, then what is left is written
};

/// Adds `b`'s counts into `a` (same key and day).
void add_counts(key_usage_row& a, const key_usage_row& b);

} // namespace emr

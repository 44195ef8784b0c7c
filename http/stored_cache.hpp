#pragma once
// The embedding cache's second tier: its vectors kept in the store, so that a restarted emr, and
// every replica of a fleet on PostgreSQL, answers texts that any of them embedded before. The
// store is read on the HTTP thread before the request actor starts, for the texts memory lacks,
// and written every second on a thread of its own: no actor waits on the store. It has a store
// connection of its own, so that neither waits behind the other's queries and key checks.

#include "actors/request.hpp"
#include "http/periodic_task.hpp"
#include "storage/store.hpp"

#include <functional>
#include <memory>
#include <mutex>

namespace emr {

class stored_cache {
public:
  /// Keeps at most `max_entries` vectors in `db` for `memory`, written every `save_every`. The
  /// clocks are injected by tests.
  stored_cache(store& db, embedding_cache& memory, std::size_t max_entries,
               std::chrono::milliseconds save_every = std::chrono::seconds{1},
               std::function<clock_time()> steady_now = std::chrono::steady_clock::now,
               std::function<std::int64_t()> unix_seconds = unix_now);
  /// Stops the writer and writes what is left.
  ~stored_cache();
  stored_cache(const stored_cache&) = delete;
  stored_cache& operator=(const stored_cache&) = delete;

  /// Reads into the memory cache the stored vectors of the jobs' texts that it lacks: for an
  /// `any` job, of its first route (the one that answers unless it fails), for an `all` job, of
  /// every route. A store that fails leaves the texts to go upstream, and is left alone for
  /// quiet_after_failure, so that callers wait for it once at most in that time.
  void warm(const std::vector<caller_job>& jobs);
  /// Writes the vectors the memory cache stored since the last save, and every minute drops the
  /// expired ones and those over max_entries.
  void save();
  /// Drops every stored vector, and those not written yet; returns how many were stored.
  std::int64_t clear();
  /// Vectors in the store now, by every replica.
  std::int64_t entries();

  static constexpr std::chrono::seconds quiet_after_failure{10};

private:
  void note_failure(std::string_view what, const std::exception& e);
  bool quiet(clock_time now);

  store& db_;
  embedding_cache& memory_;
  std::int64_t max_entries_;
  std::function<clock_time()> steady_now_;
  std::function<std::int64_t()> unix_now_;
  std::mutex saving_;                    ///< one save at a time, and none while clearing
  std::optional<clock_time> trimmed_at_; ///< trimming scans the table: once a minute
  std::mutex failure_mutex_;
  std::optional<clock_time> failed_at_;  ///< the last failure, until the store answers again
  std::unique_ptr<periodic_task> saver_; ///< stopped first, then what is left is written
};

} // namespace emr

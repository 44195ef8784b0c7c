#pragma once
// The embedding cache's second tier: its vectors kept in the store, so that a restarted emr, and
// every replica of a fleet on PostgreSQL, answers texts that any of them embedded before. The
// store is read on the HTTP thread before the request actor starts, in one query for the texts
// memory lacks, and written every second on a thread of its own: no actor waits on the store.

#include "actors/request.hpp"
#include "http/periodic_task.hpp"
#include "storage/store.hpp"

#include <functional>
#include <memory>
#include <mutex>

namespace emr {

class stored_cache {
public:
  /// Keeps at most `max_entries` vectors in `db` for `memory`. The clocks are injected by tests.
  stored_cache(store& db, embedding_cache& memory, std::size_t max_entries,
               std::function<clock_time()> steady_now = std::chrono::steady_clock::now,
               std::function<std::int64_t()> unix_seconds = unix_now);
  /// Stops the writer and writes what is left.
  ~stored_cache();
  stored_cache(const stored_cache&) = delete;
  stored_cache& operator=(const stored_cache&) = delete;

  /// Reads into the memory cache the stored vectors of the jobs' texts that it lacks, for every
  /// route and every job that may read the cache. A store that cannot be read leaves the texts to
  /// go upstream.
  void warm(const std::vector<caller_job>& jobs);
  /// Writes the vectors the memory cache stored since the last save, and every minute drops the
  /// expired ones and those over max_entries.
  void save();
  /// Drops every stored vector; returns how many there were.
  std::int64_t clear();
  /// Vectors in the store now, by every replica.
  std::int64_t entries();

private:
  void note_failure(std::string_view what, const std::exception& e);

  store& db_;
  embedding_cache& memory_;
  std::int64_t max_entries_;
  std::function<clock_time()> steady_now_;
  std::function<std::int64_t()> unix_now_;
  std::mutex saving_; ///< one save at a time
  int saves_until_trim_ = 0;
  std::atomic<bool> failing_{false};     ///< logged once until the store answers again
  std::unique_ptr<periodic_task> saver_; ///< stopped first, then what is left is written
};

} // namespace emr

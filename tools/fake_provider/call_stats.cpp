// Counting served calls for /_stats; see call_stats.hpp.

#include "tools/fake_provider/call_stats.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace emr::fake {

namespace json = boost::json;

void call_stats::begin_call() {
  const long now = ++in_flight_;
  long peak = peak_in_flight_.load();
  while (now > peak && !peak_in_flight_.compare_exchange_weak(peak, now)) {
  }
}

void call_stats::record(call_record rec, bool ok_vectors) {
  rec.t_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  std::lock_guard lock(mutex_);
  ++calls_;
  ++status_counts_[rec.status];
  if (ok_vectors) {
    ++ok_calls_;
    texts_ += rec.texts;
    largest_batch_ = std::max<long>(largest_batch_, rec.texts);
  }
  log_.push_back(std::move(rec));
  if (log_.size() > max_log_entries)
    log_.pop_front();
}

void call_stats::reset() {
  std::lock_guard lock(mutex_);
  calls_ = ok_calls_ = texts_ = largest_batch_ = 0;
  peak_in_flight_ = in_flight_.load();
  status_counts_.clear();
  log_.clear();
}

json::value call_stats::to_json() {
  std::lock_guard lock(mutex_);
  json::object counts;
  for (const auto& [status, n] : status_counts_)
    counts[std::to_string(status)] = n;
  json::array log;
  log.reserve(log_.size());
  for (const auto& r : log_)
    log.push_back({{"t_ms", r.t_ms},
                   {"path", r.path},
                   {"model", r.model},
                   {"input_type", r.input_type},
                   {"texts", r.texts},
                   {"status", r.status},
                   {"request_id", r.request_id},
                   {"header_names", json::value_from(r.header_names)}});
  return {{"calls", calls_},
          {"ok_calls", ok_calls_},
          {"texts", texts_},
          {"largest_batch", largest_batch_},
          {"peak_in_flight", peak_in_flight_.load()},
          {"status_counts", std::move(counts)},
          {"calls_log", std::move(log)}};
}

} // namespace emr::fake

// What GET /_stats reports: counts of the embeddings calls the fake served, the peak number served
// at once (a call waiting its turn in request_queue is not in flight yet; server.cpp adds the
// queue's own counts), and a log of the latest calls, so a test can count what emr sent upstream.
#pragma once

#include <boost/json/value.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace emr::fake {

struct call_record {
  double t_ms = 0;
  std::string path, model, input_type;
  int texts = 0;
  int status = 0;
  std::string request_id;
  std::vector<std::string> header_names; // what arrived, so a test can see an injected header
};

class call_stats {
public:
  void begin_call();
  void end_call() { --in_flight_; }
  /// `ok_vectors`: answered 200 with every vector intact (no malformed fault).
  void record(call_record rec, bool ok_vectors);
  void reset();
  boost::json::value to_json();

private:
  static constexpr std::size_t max_log_entries = 20000;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::atomic<long> in_flight_{0}, peak_in_flight_{0};
  std::mutex mutex_;
  long calls_ = 0, ok_calls_ = 0, texts_ = 0, largest_batch_ = 0;
  std::map<int, long> status_counts_;
  std::deque<call_record> log_;
};

} // namespace emr::fake

#pragma once
// A batcher's finished calls, kept a short while so that identical texts asked again (a burst of
// callers sharing texts outlasts one call) are answered without another call. Pure: time is
// passed in.

#include "actors/in_flight_calls.hpp"

#include <deque>

namespace emr {

class recent_answers {
public:
  /// @param keep how long a call's vectors answer again; 0 keeps nothing
  /// @param max_calls the most calls kept, whatever the call rate: the oldest go first
  explicit recent_answers(std::chrono::milliseconds keep = {}, std::size_t max_calls = 1024);

  /// The vectors of the newest kept call of this key with the first of these texts, if it
  /// carried them all; `tokens` is the texts' estimate, to share the call's usage out.
  std::optional<chunk_result> find(const batch_key& key, const std::vector<std::string>& texts,
                                   std::size_t tokens, clock_time now);
  /// Keeps an answered call's vectors, taking its texts.
  void remember(in_flight_call&& call, const shared_matrix& matrix, clock_time now);
  std::size_t size() const { return kept_.size(); }

private:
  struct kept_call {
    std::uint64_t seq = 0; ///< kept calls are numbered in order, without gaps
    batch_key key;
    clock_time expires{};
    shared_matrix matrix;
    std::size_t tokens = 0;
    std::string upstream_id;
    std::vector<std::vector<std::string>> texts;                ///< the call's chunks' texts
    std::unordered_map<std::string_view, std::uint32_t> row_of; ///< views into `texts`
  };
  void expire(clock_time now);
  void forget_oldest();

  std::chrono::milliseconds keep_;
  std::size_t max_calls_;
  std::deque<kept_call> kept_; ///< oldest first
  std::uint64_t next_seq_ = 0;
  /// The newest kept call carrying each text, by its number; the views are into that call's texts.
  std::unordered_map<std::string_view, std::uint64_t> newest_with_;
};

} // namespace emr

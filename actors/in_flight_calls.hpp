#pragma once
// The upstream calls a batcher has out, and the callers whose rows each carries. Identical texts
// under one key are sent once, even across calls: a chunk whose texts are all on their way rides
// along with the call that carries them. Pure: the batcher owns the actors behind each call.

#include "actors/pending_chunk.hpp"

#include <unordered_map>

namespace emr {

/// An upstream call in progress.
struct in_flight_call {
  batch_key key;
  std::vector<pending_chunk> chunks;
  std::vector<std::vector<std::uint32_t>> rows; ///< per chunk: matrix row of each text
  /// Matrix row of each distinct text sent; views into the texts of the chunks it was sent for.
  std::unordered_map<std::string_view, std::uint32_t> row_of;
  std::size_t tokens = 0; ///< estimated, of every chunk it answers: shares its usage
  /// Estimated, of the texts it sends, each once: what it spends of the provider's budget and
  /// what its latency is measured against (a joined chunk or a repeated text adds nothing).
  std::size_t sent_tokens = 0;
  clock_time callers_wait_until{}; ///< the latest deadline of its chunks
  bool probe = false;              ///< a health probe: nobody waits for it
  std::string upstream_id;         ///< X-Request-Id sent upstream
};

/// The matrix row of each text in a call's text-to-row map; nothing if any text is not in it.
template <class RowOf>
std::optional<std::vector<std::uint32_t>> rows_in(const RowOf& row_of,
                                                  const std::vector<std::string>& texts) {
  std::vector<std::uint32_t> rows;
  rows.reserve(texts.size());
  for (const auto& text : texts) {
    auto row = row_of.find(text);
    if (row == row_of.end())
      return std::nullopt;
    rows.push_back(row->second);
  }
  return rows;
}

class in_flight_calls {
public:
  /// A call just opened: its id and what to send, each distinct text once (views into the call).
  struct opened {
    std::uint64_t id = 0;
    upstream_batch batch;
  };
  opened open(batch_key key, std::vector<pending_chunk> chunks, bool probe);

  /// A chunk that joined a call carrying every one of its texts.
  struct joined {
    std::uint64_t id = 0;
    /// The chunk's caller waits past every other caller of the call: the call may now retry
    /// until then.
    bool extends_wait = false;
  };
  /// Adds the chunk to a call of its key that carries all its texts (taking it); nothing (and the
  /// chunk untouched) if none does. Probes carry nobody.
  std::optional<joined> join(const batch_key& key, pending_chunk& chunk);

  in_flight_call* find(std::uint64_t id);
  /// Removes the call and hands it over, to be answered.
  std::optional<in_flight_call> close(std::uint64_t id);

  std::size_t size() const { return calls_.size(); }
  bool empty() const { return calls_.empty(); }
  auto begin() { return calls_.begin(); }
  auto end() { return calls_.end(); }
  auto begin() const { return calls_.begin(); }
  auto end() const { return calls_.end(); }

private:
  std::unordered_map<std::uint64_t, in_flight_call> calls_;
  std::uint64_t next_id_ = 1;
};

} // namespace emr

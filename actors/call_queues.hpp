#pragma once
// The chunks waiting for an upstream call, per batch key, and how much of each queue fits the
// next call. Pure and clock-free: the batcher decides when a call goes; this says what goes in it.

#include "actors/pending_chunk.hpp"

#include <deque>
#include <map>
#include <set>
#include <unordered_set>

namespace emr {

/// The front chunks of a queue that fit one call. A call carries each text once, so it is
/// counted in distinct texts; it grows as chunks arrive, so deciding a flush never rescans.
struct call_prefix {
  std::unordered_set<std::string_view> seen; ///< views into the texts of the queue's chunks
  std::size_t chunks = 0, texts = 0, distinct = 0;
  std::size_t tokens = 0; ///< of chunks that added a text: never less than the call's
  bool closed = false;    ///< a chunk did not fit: the rest wait for a later call
};

/// Chunks sharing a batch key, in the order calls take them: fair between tenants, so that one
/// tenant's bulk job takes its share of each call and another's single text goes in the next one.
/// Self-clocked fair queueing counted in texts: a chunk's tag is where its tenant's queued texts
/// end, each tenant counting from the tag of the last chunk taken, and chunks wait in tag order
/// (arrival order among equal tags, and always within one tenant).
struct key_queue {
  batch_limits limits; ///< of the key's model
  std::deque<pending_chunk> chunks;
  std::size_t texts = 0;
  call_prefix prefix;
  std::uint64_t taken_tag = 0;                      ///< the tag of the last chunk taken
  std::map<std::int64_t, std::uint64_t> tenant_end; ///< the tag of each tenant's last chunk
  std::multiset<clock_time> arrivals;               ///< of the chunks queued
  /// When the longest-waiting chunk arrived (not always the first to go).
  clock_time oldest() const { return *arrivals.begin(); }
  /// Whether the next call is as full as it gets: a chunk waits behind it, or it holds the most
  /// texts a call may carry, or nine tenths of the tokens.
  bool call_full() const;
};

/// Where to halve a rejected call of two chunks or more: the chunk boundary whose larger half
/// sends the fewest distinct texts again, the earliest on a tie. Halving by chunks would send
/// most texts again in one half when one caller brought many.
std::size_t halves_at(const std::vector<pending_chunk>& chunks);

/// Splits a batch at chunk boundaries into `parts` runs (at most one per chunk) of about equal
/// texts, in order.
std::vector<std::vector<pending_chunk>> spread_evenly(std::vector<pending_chunk> chunks,
                                                      std::size_t parts);

/// Whether no text appears twice among the chunks: a batch spread over calls would send a shared
/// text once in each.
bool texts_distinct(const std::vector<pending_chunk>& chunks);

class call_queues {
public:
  /// Queues a chunk under its key; `limits` are those of the key's model.
  void push(const batch_key& key, pending_chunk chunk, const batch_limits& limits);
  /// Puts a rejected call's half back, ahead of every queue and of halves put back before: it
  /// goes as a call of its own.
  void put_back(batch_key key, std::vector<pending_chunk> chunks);
  /// The next half put back, if any.
  std::optional<std::pair<batch_key, std::vector<pending_chunk>>> take_put_back();
  /// Keys with chunks queued, the longest-waiting first, so that one busy key cannot starve
  /// another. The pointers hold until the queues next change.
  std::vector<std::pair<const batch_key*, const key_queue*>> by_age() const;
  /// Takes the key's front chunks that fit one call.
  std::vector<pending_chunk> take_call(const batch_key& key);
  /// Takes every waiting chunk (queued or put back) whose caller stops waiting by `by`, leaving
  /// the others in order.
  std::vector<pending_chunk> take_due(clock_time by = clock_time::max());

  /// No waiting chunk's caller stops waiting earlier.
  clock_time next_deadline() const { return next_deadline_; }
  /// Texts queued (put-back halves are not counted: they were admitted once already).
  std::size_t texts() const { return texts_; }
  /// Whether any chunk waits, queued or put back.
  bool waiting() const { return texts_ > 0 || !put_back_.empty(); }
  const std::map<batch_key, key_queue>& queues() const { return queues_; }

private:
  std::map<batch_key, key_queue> queues_;
  std::deque<std::pair<batch_key, std::vector<pending_chunk>>> put_back_;
  std::size_t texts_ = 0;
  clock_time next_deadline_ = clock_time::max();
};

} // namespace emr

#include "actors/recent_answers.hpp"

namespace emr {

recent_answers::recent_answers(std::chrono::milliseconds keep, std::size_t max_calls)
    : keep_(keep), max_calls_(max_calls) {}

void recent_answers::expire(clock_time now) {
  while (!kept_.empty() && kept_.front().expires <= now)
    forget_oldest();
}

std::optional<chunk_result> recent_answers::find(const batch_key& key,
                                                 const std::vector<std::string>& texts,
                                                 std::size_t tokens, clock_time now) {
  expire(now);
  if (texts.empty())
    return std::nullopt;
  // One lookup, not a scan of every kept call: a chunk whose texts rode in one call finds it by
  // its first text (an older call holding them all too is not looked for).
  auto newest = newest_with_.find(texts.front());
  if (newest == newest_with_.end())
    return std::nullopt;
  const auto& call = kept_[newest->second - kept_.front().seq];
  if (call.key != key)
    return std::nullopt;
  auto rows = rows_in(call.row_of, texts);
  if (!rows)
    return std::nullopt;
  // The caller's usage is what its texts cost in the call that carried them, as for a chunk that
  // rode in that call.
  return chunk_result{call.matrix, std::move(*rows),
                      usage_share(call.matrix->total_tokens, tokens, call.tokens), std::nullopt,
                      call.upstream_id};
}

void recent_answers::remember(in_flight_call&& call, const shared_matrix& matrix, clock_time now) {
  if (keep_.count() <= 0 || max_calls_ == 0)
    return;
  expire(now);
  if (kept_.size() == max_calls_)
    forget_oldest();
  auto& kept = kept_.emplace_back();
  kept.seq = next_seq_++;
  kept.key = std::move(call.key);
  kept.expires = now + keep_;
  kept.matrix = matrix;
  kept.tokens = call.tokens;
  kept.upstream_id = std::move(call.upstream_id);
  // Moving a text vector hands over its buffer, so the strings (and row_of's views of them) stay
  // where they are.
  kept.texts.reserve(call.chunks.size());
  for (auto& chunk : call.chunks)
    kept.texts.push_back(std::move(chunk.texts));
  kept.row_of = std::move(call.row_of);
  for (const auto& [text, row] : kept.row_of) {
    // The entry's key must view this call's copy: an older call's goes when that call does.
    if (auto older = newest_with_.find(text); older != newest_with_.end())
      newest_with_.erase(older);
    newest_with_.emplace(text, kept.seq);
  }
}

void recent_answers::forget_oldest() {
  const auto& oldest = kept_.front();
  for (const auto& [text, row] : oldest.row_of)
    if (auto entry = newest_with_.find(text);
        entry != newest_with_.end() && entry->second == oldest.seq)
      newest_with_.erase(entry);
  kept_.pop_front();
}

} // namespace emr

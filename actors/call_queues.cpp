#include "actors/call_queues.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_set>

namespace emr {

namespace {

// Counts `chunk`, just queued, into the prefix if it fits.
void extend(call_prefix& prefix, const pending_chunk& chunk, const batch_limits& limits) {
  if (prefix.closed)
    return;
  // The first chunk always goes: the request actor sized it to fit a call.
  bool first = prefix.chunks == 0;
  bool tokens_fit = limits.max_tokens == 0 || prefix.tokens + chunk.tokens <= limits.max_tokens;
  std::size_t fresh = 0;
  if (first || (tokens_fit && prefix.distinct + chunk.texts.size() <= limits.max_texts)) {
    // Fits even if every text is new: no need to undo anything.
    for (const auto& text : chunk.texts)
      fresh += prefix.seen.insert(text).second ? 1 : 0;
  } else {
    std::vector<std::string_view> added;
    for (const auto& text : chunk.texts)
      if (prefix.seen.insert(text).second)
        added.push_back(text);
    // A chunk whose texts are all in the call already adds no tokens to it.
    bool fits = added.empty() || (tokens_fit && prefix.distinct + added.size() <= limits.max_texts);
    if (!fits) {
      for (auto text : added)
        prefix.seen.erase(text);
      prefix.closed = true;
      return;
    }
    fresh = added.size();
  }
  ++prefix.chunks;
  prefix.texts += chunk.texts.size();
  prefix.distinct += fresh;
  prefix.tokens += fresh == 0 ? 0 : chunk.tokens;
}

void recount(key_queue& queue) {
  queue.prefix = {};
  for (const auto& chunk : queue.chunks) {
    extend(queue.prefix, chunk, queue.limits);
    if (queue.prefix.closed)
      break;
  }
}

} // namespace

bool key_queue::call_full() const {
  return prefix.chunks < chunks.size() || prefix.distinct >= limits.max_texts ||
         (limits.max_tokens > 0 && prefix.tokens * 10 >= limits.max_tokens * 9);
}

void call_queues::push(const batch_key& key, pending_chunk chunk, const batch_limits& limits) {
  auto [pos, fresh] = queues_.try_emplace(key);
  auto& queue = pos->second;
  if (fresh)
    queue.limits = limits;
  next_deadline_ = std::min(next_deadline_, chunk.deadline);
  texts_ += chunk.texts.size();
  queue.texts += chunk.texts.size();
  queue.arrivals.insert(chunk.arrived);
  auto& tenant_end = queue.tenant_end[chunk.tenant];
  chunk.fair_tag = std::max(queue.taken_tag, tenant_end) + chunk.texts.size();
  tenant_end = chunk.fair_tag;
  auto at = std::upper_bound(
      queue.chunks.begin(), queue.chunks.end(), chunk.fair_tag,
      [](std::uint64_t tag, const pending_chunk& queued) { return tag < queued.fair_tag; });
  if (at == queue.chunks.end()) {
    queue.chunks.push_back(std::move(chunk));
    extend(queue.prefix, queue.chunks.back(), queue.limits);
    return;
  }
  // Ahead of another tenant's chunks: the next call is counted again. (Moving chunks within the
  // deque moves their text vectors, not the texts the prefix views.)
  queue.chunks.insert(at, std::move(chunk));
  recount(queue);
}

void call_queues::put_back(batch_key key, std::vector<pending_chunk> chunks) {
  for (const auto& chunk : chunks)
    next_deadline_ = std::min(next_deadline_, chunk.deadline);
  put_back_.emplace_front(std::move(key), std::move(chunks));
}

std::size_t halves_at(const std::vector<pending_chunk>& chunks) {
  // Distinct texts in chunks [0, i), and in chunks [i, n): each half is a call of its own.
  auto distinct = [](auto first, auto last) {
    std::vector<std::size_t> counts{0};
    std::unordered_set<std::string_view> seen;
    for (auto it = first; it != last; ++it) {
      for (const auto& text : it->texts)
        seen.insert(text);
      counts.push_back(seen.size());
    }
    return counts;
  };
  auto before = distinct(chunks.begin(), chunks.end());
  auto after = distinct(chunks.rbegin(), chunks.rend());
  auto n = chunks.size();
  auto larger_half = [&](std::size_t i) { return std::max(before[i], after[n - i]); };
  std::size_t best = 1;
  for (std::size_t i = 2; i < n; ++i)
    if (larger_half(i) < larger_half(best))
      best = i;
  return best;
}

std::vector<std::vector<pending_chunk>> spread_evenly(std::vector<pending_chunk> chunks,
                                                      std::size_t parts) {
  parts = std::clamp<std::size_t>(parts, 1, std::max<std::size_t>(chunks.size(), 1));
  std::size_t total = 0;
  for (const auto& chunk : chunks)
    total += chunk.texts.size();
  std::vector<std::vector<pending_chunk>> runs(parts);
  std::size_t run = 0, texts = 0;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    // The next run starts once this one holds its share of the texts, or when the chunks left
    // are only enough to give every run still empty one each.
    bool share_reached = texts * parts >= total * (run + 1);
    bool chunks_needed = chunks.size() - i <= parts - run - 1;
    if (!runs[run].empty() && run + 1 < parts && (share_reached || chunks_needed))
      ++run;
    texts += chunks[i].texts.size();
    runs[run].push_back(std::move(chunks[i]));
  }
  return runs;
}

bool texts_distinct(const std::vector<pending_chunk>& chunks) {
  std::unordered_set<std::string_view> seen;
  for (const auto& chunk : chunks)
    for (const auto& text : chunk.texts)
      if (!seen.insert(text).second)
        return false;
  return true;
}

std::optional<std::pair<batch_key, std::vector<pending_chunk>>> call_queues::take_put_back() {
  // A half emptied by take_due stays in line until here.
  while (!put_back_.empty() && put_back_.front().second.empty())
    put_back_.pop_front();
  if (put_back_.empty())
    return std::nullopt;
  auto half = std::move(put_back_.front());
  put_back_.pop_front();
  return half;
}

std::vector<std::pair<const batch_key*, const key_queue*>> call_queues::by_age() const {
  std::vector<std::pair<const batch_key*, const key_queue*>> order;
  order.reserve(queues_.size());
  for (const auto& [key, queue] : queues_)
    order.emplace_back(&key, &queue);
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.second->oldest() < b.second->oldest(); });
  return order;
}

std::vector<pending_chunk> call_queues::take_call(const batch_key& key) {
  auto pos = queues_.find(key);
  if (pos == queues_.end())
    return {};
  auto& queue = pos->second;
  std::vector<pending_chunk> call;
  call.reserve(queue.prefix.chunks);
  for (std::size_t k = 0; k < queue.prefix.chunks; ++k) {
    queue.taken_tag = std::max(queue.taken_tag, queue.chunks.front().fair_tag);
    queue.arrivals.erase(queue.arrivals.find(queue.chunks.front().arrived));
    call.push_back(std::move(queue.chunks.front()));
    queue.chunks.pop_front();
  }
  // A tenant whose chunks have all been taken starts again from the queue's clock.
  std::erase_if(queue.tenant_end, [&](const auto& t) { return t.second <= queue.taken_tag; });
  queue.texts -= queue.prefix.texts;
  texts_ -= queue.prefix.texts;
  if (queue.chunks.empty())
    queues_.erase(pos);
  else
    recount(queue);
  return call;
}

std::vector<pending_chunk> call_queues::take_due(clock_time by) {
  std::vector<pending_chunk> due;
  next_deadline_ = clock_time::max();
  // Keeps the chunks that wait beyond `by`, in order; returns the texts taken. `arrivals`: the
  // queue's, when the chunks are a key queue's.
  auto take = [&](auto& chunks, std::multiset<clock_time>* arrivals) {
    std::size_t kept = 0, texts = 0;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      if (chunks[i].deadline <= by) {
        texts += chunks[i].texts.size();
        if (arrivals)
          arrivals->erase(arrivals->find(chunks[i].arrived));
        due.push_back(std::move(chunks[i]));
        continue;
      }
      next_deadline_ = std::min(next_deadline_, chunks[i].deadline);
      if (kept != i)
        chunks[kept] = std::move(chunks[i]);
      ++kept;
    }
    chunks.erase(chunks.begin() + static_cast<std::ptrdiff_t>(kept), chunks.end());
    return texts;
  };
  for (auto q = queues_.begin(); q != queues_.end();) {
    auto& queue = q->second;
    auto texts = take(queue.chunks, &queue.arrivals);
    queue.texts -= texts;
    texts_ -= texts;
    if (texts > 0 && !queue.chunks.empty()) {
      recount(queue);
      // A tenant whose chunks expired is not pushed back for texts that never went.
      queue.tenant_end.clear();
      for (const auto& chunk : queue.chunks)
        queue.tenant_end[chunk.tenant] = std::max(queue.tenant_end[chunk.tenant], chunk.fair_tag);
    }
    q = queue.chunks.empty() ? queues_.erase(q) : std::next(q);
  }
  for (auto& [key, chunks] : put_back_)
    take(chunks, nullptr);
  return due;
}

} // namespace emr

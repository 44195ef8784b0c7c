#include "actors/in_flight_calls.hpp"

#include "providers/provider.hpp"

namespace emr {

in_flight_calls::opened in_flight_calls::open(batch_key key, std::vector<pending_chunk> chunks,
                                              bool probe) {
  auto id = next_id_++;
  auto& call = calls_[id];
  call.key = std::move(key);
  call.chunks = std::move(chunks);
  call.probe = probe;
  // The views in row_of stay valid: a chunk's texts never change, and moving chunks (or the
  // call) moves their text vectors' buffers, not the strings in them.
  opened out{id, upstream_batch{call.key.model, call.key.input_type, call.key.dimensions, {}}};
  call.rows.reserve(call.chunks.size());
  for (const auto& chunk : call.chunks) {
    auto& rows = call.rows.emplace_back();
    rows.reserve(chunk.texts.size());
    for (const auto& text : chunk.texts) {
      auto [it, fresh] =
          call.row_of.emplace(text, static_cast<std::uint32_t>(out.batch.texts.size()));
      if (fresh) {
        out.batch.texts.push_back(text);
        call.sent_tokens += estimate_tokens(text);
      }
      rows.push_back(it->second);
    }
    call.tokens += chunk.tokens;
    call.callers_wait_until = std::max(call.callers_wait_until, chunk.deadline);
  }
  return out;
}

std::optional<in_flight_calls::joined> in_flight_calls::join(const batch_key& key,
                                                             pending_chunk& chunk) {
  for (auto& [id, call] : calls_) {
    if (call.probe || call.key != key)
      continue;
    auto rows = rows_in(call.row_of, chunk.texts);
    if (!rows)
      continue;
    joined out{id, chunk.deadline > call.callers_wait_until};
    if (out.extends_wait)
      call.callers_wait_until = chunk.deadline;
    call.tokens += chunk.tokens;
    call.rows.push_back(std::move(*rows));
    call.chunks.push_back(std::move(chunk));
    return out;
  }
  return std::nullopt;
}

in_flight_call* in_flight_calls::find(std::uint64_t id) {
  auto pos = calls_.find(id);
  return pos == calls_.end() ? nullptr : &pos->second;
}

std::optional<in_flight_call> in_flight_calls::close(std::uint64_t id) {
  auto pos = calls_.find(id);
  if (pos == calls_.end())
    return std::nullopt;
  auto call = std::move(pos->second);
  calls_.erase(pos);
  return call;
}

} // namespace emr

#pragma once
// A caller's chunk inside the batcher, from its arrival to its answer.

#include "actors/messages.hpp"

namespace emr {

/// Who waits for a chunk: the caller's message, as the batcher numbers the messages it holds,
/// and the chunk's place in it. The batcher's parts never see how the answer travels back.
struct chunk_caller {
  std::uint32_t message = 0;
  std::uint32_t index = 0;
};

/// A chunk waiting for, or riding in, an upstream call.
struct pending_chunk {
  std::vector<std::string> texts;
  std::size_t tokens = 0; ///< estimated
  std::string request_id;
  chunk_caller caller;
  clock_time arrived{};
  clock_time deadline = clock_time::max(); ///< see chunk_request::deadline
  std::int64_t tenant = 0;                 ///< see chunk_request::tenant
  std::uint64_t fair_tag = 0;              ///< its place in its key's queue (call_queues::push)
};

// Calls and kept answers view texts inside chunks; a vector that copied chunks on growth instead
// of moving them would leave those views dangling.
static_assert(std::is_nothrow_move_constructible_v<pending_chunk>);

/// A chunk's share of a call's token usage: what its texts cost of the call's estimate.
inline std::int64_t usage_share(std::int64_t call_usage, std::size_t chunk_tokens,
                                std::size_t call_tokens) {
  return call_tokens == 0 ? 0
                          : call_usage * static_cast<std::int64_t>(chunk_tokens) /
                                static_cast<std::int64_t>(call_tokens);
}

} // namespace emr

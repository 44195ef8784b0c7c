#include "actors/call_cost.hpp"

#include <algorithm>

namespace emr {

namespace {

// Each answer keeps nine tenths of the weight of those before it: about the last ten answers
// speak, so a provider that slows down or speeds up is followed within a few bursts.
constexpr double keep = 0.9;

} // namespace

void call_cost::on_answer(std::size_t tokens, std::chrono::nanoseconds latency) {
  auto x = static_cast<double>(tokens);
  auto y = static_cast<double>(latency.count());
  weight_ = keep * weight_ + 1;
  tokens_ = keep * tokens_ + x;
  latency_ = keep * latency_ + y;
  tokens_sq_ = keep * tokens_sq_ + x * x;
  cross_ = keep * cross_ + x * y;
  typical_ = typical_.count() == 0 ? latency : (7 * typical_ + latency) / 8;
  auto mean_tokens = tokens_ / weight_;
  auto variance = tokens_sq_ / weight_ - mean_tokens * mean_tokens;
  // The slope is only as good as the spread of sizes behind it: calls that all carried about the
  // same tokens say nothing about a token's cost, and the estimate from before stands.
  if (weight_ < 2.5 || variance < 0.0625 * mean_tokens * mean_tokens || variance <= 0)
    return;
  auto slope = (cross_ / weight_ - mean_tokens * latency_ / weight_) / variance;
  ns_per_token_ = std::max(0.0, slope);
}

std::size_t call_cost::calls_for(std::size_t tokens, std::size_t most) const {
  auto worth = static_cast<double>(typical_.count()) / 20;
  auto batch_ns = ns_per_token_ * static_cast<double>(tokens);
  std::size_t calls = 1;
  // Going from k to k + 1 calls shortens the batch by its per-token time / (k (k + 1)).
  while (calls < most &&
         batch_ns / static_cast<double>(calls * (calls + 1)) >= std::max(worth, 1.0))
    ++calls;
  return calls;
}

} // namespace emr
